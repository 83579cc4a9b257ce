"""The oracle control for ``synthesize``: every row it would generate is drawn by a renderer that
knows the dataset's scene (on SynthMarket, ``synthmarket.oracle``) instead of a generator.

Same plan, names, identities and counts as the PoNA-augmented and copied sets, so the three differ
only in pixels: the oracle is the best a pose-transfer generator could produce from the same condition
image and target pose. Rows the plan copies or skips are copied or skipped here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from augment.synthesis import _copy_conditions, _manifest
from runtime.atomic import atomic_path

log = logging.getLogger(__name__)

# (target name, condition name) -> the image file's bytes (JPEG)
Render = Callable[[str, str], bytes]


def oracle_control(plan: pd.DataFrame, render: Render, *, images_dir: str | Path, out_dir: str | Path,
                   renderer: str, seed: int = 0) -> pd.DataFrame:
    """Write ``render(name, condition)`` for each row ``plan_synthesis`` marks ``generate`` (images
    already on disk are kept, so an interrupted run resumes); returns the synthesis manifest, whose
    ``renderer`` column names the renderer on the rendered rows (status ``generated``, so
    ``merge_training_set`` takes them as it takes generated ones)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rendered = plan["action"] == "generate"
    written = 0
    for r in plan[rendered].itertuples(index=False):
        if not (out / r.name).exists():
            with atomic_path(out / r.name) as tmp:
                tmp.write_bytes(render(r.name, r.condition))
            written += 1
    _copy_conditions(plan, Path(images_dir), out)
    log.info("rendered %d oracle images (%d already present) into %s", written, int(rendered.sum()) - written, out)
    manifest = _manifest(plan, Path(images_dir), out, "", "", seed)
    return manifest.assign(renderer=[renderer if r else "" for r in rendered])
