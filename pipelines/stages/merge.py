"""Stage 5: the re-ID training folders in Market layout: ``reduced`` (kept images only) and
``augmented`` (kept + generated) and ``copy`` (kept + copied conditions), each with its manifest (``augment.merge_training_set``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from augment.merge import MANIFEST, merge_training_set
from pipelines.config import PipelineConfig


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    return {"link": cfg.augment.link}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any], synthesis: str | None = None) -> dict[str, Any]:
    """``synthesis`` names the dependency whose manifest is merged in (none: the reduced set)."""
    kept = pd.read_csv(deps["subsample"]["kept"])
    synthesized = pd.read_csv(deps[synthesis]["manifest"]) if synthesis else None
    out = folder / "dataset"
    if out.exists():  # a previous attempt renamed it into place but died before the stage was recorded
        if not (out / MANIFEST).is_file():
            raise FileExistsError(f"{out} exists but is not a merged training set (no {MANIFEST}); move it away")
        shutil.rmtree(out)
    manifest = merge_training_set(kept, synthesized, deps["prepare_data"]["root"], out, link=cfg.augment.link)
    return {"root": str(out), "n_images": len(manifest),
            "n_generated": int((manifest["source"] == "generated").sum()),
            "n_copied": int((manifest["source"] == "copied").sum())}


def verify(result: dict[str, Any]) -> None:
    """Every image the manifest lists is in the folder, and nothing else."""
    root = Path(result["root"])
    files = sum(1 for _ in (root / "bounding_box_train").iterdir())
    rows = len(pd.read_csv(root / MANIFEST))
    if not files == rows == result["n_images"]:
        raise RuntimeError(f"merged set {root} is incomplete: {files} images, {rows} manifest rows, "
                           f"{result['n_images']} expected")
