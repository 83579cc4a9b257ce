"""Stage 5: the re-ID training folders in Market layout: ``reduced`` (kept images only) and
``augmented`` (kept + generated) and ``copy`` (kept + copied conditions), each with its manifest (``augment.merge_training_set``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from augment.merge import MANIFEST, merge_training_set
from pipelines import methods
from pipelines.config import PipelineConfig
from pipelines.stage_tables import read_table
from pipelines.stages import Instance, same
from pipelines.stages.synthesize import MANIFEST_PATHS


def instances(cfg: PipelineConfig) -> list[Instance]:
    """One per training folder the methods need: kept + each method's filled images, and the kept alone."""
    out = [Instance(m.merged, {**same("prepare_data", "subsample"), "synthesis": m.fills})
           for m in methods.filling(cfg)]
    if methods.REDUCED in {methods.training_set(cfg, m) for m in cfg.methods}:
        out.append(Instance(methods.REDUCED, same("prepare_data", "subsample")))
    return out


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    return {"link": cfg.augment.link}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    """``deps["synthesis"]``, when present, is the stage whose manifest is merged in (absent: the reduced set)."""
    kept = read_table(deps["subsample"]["kept"])
    synthesized = read_table(deps["synthesis"]["manifest"], MANIFEST_PATHS) if "synthesis" in deps else None
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
