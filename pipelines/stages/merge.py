"""Stage 5: the re-ID training folders in Market layout (``augment.merge_training_set``), each with
its manifest: ``merge[reduced]`` (the kept images only) and, for each method that fills, the kept
images with its filled ones (``merge[augmented]`` for PoNA, ``merge[copy]``, ...)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from augment.merge import MANIFEST, merge_training_set
from pipelines import plan
from pipelines.config import PipelineConfig
from pipelines.stage_names import PREPARE_DATA, REDUCED, SUBSAMPLE, fill, merged
from pipelines.stage_tables import read_table
from pipelines.stages import Instance, StageOutput, StageSettings, same
from pipelines.stages.synthesize import MANIFEST_PATHS


@dataclass(frozen=True, kw_only=True)
class Settings(StageSettings):
    link: str


@dataclass(frozen=True, kw_only=True)
class Result(StageOutput):
    root: str
    n_images: int
    n_generated: int
    n_copied: int


def settings(cfg: PipelineConfig) -> Settings:
    return Settings(link=cfg.augment.link)


def instances(cfg: PipelineConfig) -> list[Instance]:
    """One per training folder the methods need: kept + each method's filled images, and the kept alone."""
    out = [Instance(merged(m), settings(cfg), {**same(PREPARE_DATA, SUBSAMPLE), "synthesis": fill(m)})
           for m in plan.filling(cfg)]
    if REDUCED in {plan.training_set(cfg, m) for m in cfg.methods}:
        out.append(Instance(REDUCED, settings(cfg), same(PREPARE_DATA, SUBSAMPLE)))
    return out


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    """``deps["synthesis"]``, when present, is the stage whose manifest is merged in (absent: the reduced set)."""
    kept = read_table(deps["subsample"].kept)
    synthesized = read_table(deps["synthesis"].manifest, MANIFEST_PATHS) if "synthesis" in deps else None
    out = folder / "dataset"
    if out.exists():  # a previous attempt renamed it into place but died before the stage was recorded
        if not (out / MANIFEST).is_file():
            raise FileExistsError(f"{out} exists but is not a merged training set (no {MANIFEST}); move it away")
        shutil.rmtree(out)
    manifest = merge_training_set(kept, synthesized, deps["prepare_data"].root, out, link=settings.link)
    return Result(root=str(out), n_images=len(manifest), n_generated=int((manifest["source"] == "generated").sum()),
                  n_copied=int((manifest["source"] == "copied").sum()))


def verify(result: Result) -> None:
    """Every image the manifest lists is in the folder, and nothing else."""
    root = Path(result.root)
    files = sum(1 for _ in (root / "bounding_box_train").iterdir())
    rows = len(pd.read_csv(root / MANIFEST))
    if not files == rows == result.n_images:
        raise RuntimeError(f"merged set {root} is incomplete: {files} images, {rows} manifest rows, "
                           f"{result.n_images} expected")
