"""Finding the pairs to score: ``<from>___<to>`` image files, PATN's ``<from>___<to>_vis.jpg`` strips
(condition | condition pose | target | target pose | generated), or the pairs of a baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pona_model.evaluation.settings import EvaluationError
from pona_model.generate import output_name
from pona_model.metrics.images import VIS_SUFFIX, list_images
from runtime.images import IMAGE_EXTENSIONS


@dataclass
class ScoredPair:
    """One pair to score: its ``<from>___<to>`` name, the condition and target image names (the
    condition may be unknown), and the generated image file or PATN strip (neither for a baseline)."""

    name: str
    source: str | None
    target: str
    file: Path | None = None
    strip: Path | None = None


def _by_stem(names: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in names:
        stem = Path(n).stem
        if stem in out and out[stem] != n:
            raise EvaluationError(f"{what}: {out[stem]!r} and {n!r} share the stem {stem!r}, so pair names "
                                  "<from>___<to> cannot tell them apart; rename one")
        out[stem] = n
    return out


def find_pairs(generated: Path | None, annotations: dict[str, np.ndarray], pairs: pd.DataFrame | None,
               fmt: str = "auto", images: Path | None = None, baseline: str = "") -> tuple[list[ScoredPair], str]:
    """The pairs to score, sorted by name, and the format used ('images', 'vis' or 'baseline')."""
    if pairs is not None:
        unannotated = sorted(set(pairs["to"]) - set(annotations))
        if unannotated:
            raise EvaluationError(f"{len(unannotated)} target(s) of the pairs have no annotation (e.g. "
                                  f"{unannotated[:3]}); pass the annotation CSV of the test images")
    if baseline:
        if pairs is None or images is None:
            raise EvaluationError("baseline=identity needs pairs=PAIRS.csv and images=DIR (the condition images)")
        found = [ScoredPair(output_name(a, b), a, b) for a, b in zip(pairs["from"], pairs["to"])]
        return sorted(found, key=lambda p: p.name), "baseline"
    if generated is None or not generated.is_dir():
        raise EvaluationError(f"generated folder {generated} does not exist; make it with python -m "
                              "pona_model.generate, or pass checkpoint=... to generate first")
    files: dict[str, Path] = {}
    strips: dict[str, Path] = {}
    for p in sorted(generated.iterdir()):
        if not p.is_file() or "___" not in p.name:
            continue
        if p.name.endswith(VIS_SUFFIX):
            strips[p.name[: -len(VIS_SUFFIX)]] = p
        elif p.suffix.lower() in IMAGE_EXTENSIONS:
            files.setdefault(p.stem, p)
    if fmt == "auto":
        fmt = "images" if files else "vis"
    chosen = files if fmt == "images" else strips
    if not chosen:
        kind = "<from>___<to>.png images" if fmt == "images" else "<from>___<to>_vis.jpg strips"
        raise EvaluationError(f"no generated {kind} in {generated}")
    target_names = _by_stem(list(annotations), f"annotations ({len(annotations)} names)")
    image_names = _by_stem([p.name for p in list_images(images)], str(images)) if images else {}

    def make(name: str, source: str | None, target: str) -> ScoredPair:
        path = chosen[name]
        return ScoredPair(name, source, target, file=path if fmt == "images" else None,
                          strip=path if fmt == "vis" else None)

    result: list[ScoredPair] = []
    if pairs is not None:
        missing = []
        for a, b in zip(pairs["from"], pairs["to"]):
            name = output_name(a, b)
            if name in chosen:
                result.append(make(name, a, b))
            else:
                missing.append(name)
        if missing:
            raise EvaluationError(f"{len(missing)} of {len(pairs)} pairs have no generated image in {generated} "
                                  f"(e.g. {missing[:3]}); generate them, or leave pairs= empty to score the "
                                  "pairs that are there")
    else:
        for name in chosen:
            parts = name.split("___")
            if len(parts) != 2 or not all(parts):
                raise EvaluationError(f"{chosen[name]}: the name is not <from>___<to>")
            src, tgt = parts
            if tgt not in target_names:
                raise EvaluationError(f"{chosen[name]}: the target {tgt!r} has no row in the annotation file; "
                                      "pass the annotation CSV of the test images")
            source = target_names.get(src) or image_names.get(src)
            result.append(make(name, source, target_names[tgt]))
    return sorted(result, key=lambda p: p.name), fmt

