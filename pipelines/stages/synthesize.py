"""Stage 4: re-synthesise every missing training image (``augment.select_conditions``,
``plan_synthesis``, ``synthesize``) with one method's generator (the ``train_generator`` role: PoNA's,
or PATN's) on the configured dask scheduler; writes the images and the provenance manifest.
``copy_conditions`` and ``render_oracle`` fill the same plan without a generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from augment import plan_synthesis, select_conditions, synthesize
from pipelines.config import PipelineConfig, effective_precision
from pipelines.stage_tables import read_table, write_table
from pipelines.stages import StageOutput, StageSettings, run_only
from poseformats.annotations import read_annotations


@dataclass(frozen=True, kw_only=True)
class Plan(StageSettings):
    """Which kept image stands in for each missing one: the same for every method that fills."""

    condition_policy: str
    unusable_pose: str
    seed: int


def plan_settings(cfg: PipelineConfig) -> dict[str, Any]:
    """``Plan``'s fields from the config, for the settings of every filling stage."""
    return {"condition_policy": cfg.augment.condition_policy, "unusable_pose": cfg.augment.unusable_pose,
            "seed": cfg.seed}


@dataclass(frozen=True, kw_only=True)
class Settings(Plan):
    precision: str  # resolved (fp32 or bf16): an auto run never reuses the other dtype's images
    device: str = run_only()
    scheduler: str = run_only()
    workers: int = run_only()
    shard_size: int = run_only()
    batch_size: int = run_only()


@dataclass(frozen=True, kw_only=True)
class Result(StageOutput):
    """``counts``: the manifest's rows by status (generated, copied_condition, skipped, ...)."""

    manifest: str
    images: str
    counts: dict[str, int]

    def summary(self) -> Any:
        """What results.json records of the filled images (under the method's ``report_key``)."""
        return self.counts


def settings(cfg: PipelineConfig) -> Settings:
    a = cfg.augment
    return Settings(**plan_settings(cfg), precision=effective_precision(cfg), device=cfg.device,
                    scheduler=cfg.dask.scheduler, workers=cfg.dask.workers, shard_size=a.shard_size,
                    batch_size=a.batch_size)


def synthesis_plan(plan: Plan, deps: dict[str, Any]) -> tuple[pd.DataFrame, dict, Path]:
    data, sub = deps["prepare_data"], deps["subsample"]
    kept, missing = read_table(sub.kept), read_table(sub.missing)
    keypoints = read_annotations(data.annotations)
    images = Path(data.root) / "bounding_box_train"
    chosen = select_conditions(missing, kept, plan.condition_policy, plan.seed, keypoints=keypoints)
    return plan_synthesis(chosen, keypoints, images, plan.unusable_pose), keypoints, images


MANIFEST_PATHS = ("path", "condition_path", "checkpoint")  # written relative to the manifest's folder


def write_manifest(folder: Path, manifest: pd.DataFrame) -> dict[str, Any]:
    """The manifest written; ``Result``'s fields for it."""
    write_table(manifest, folder / "synthesis.csv", MANIFEST_PATHS)
    counts = manifest["status"].value_counts().to_dict()
    return {"manifest": str(folder / "synthesis.csv"), "images": str(folder / "images"),
            "counts": {k: int(v) for k, v in counts.items()}}


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    gen = deps["train_generator"]
    plan, keypoints, images = synthesis_plan(settings, deps)
    manifest = synthesize(plan, keypoints, checkpoint=gen.checkpoint, images_dir=images,
                          out_dir=folder / "images", device=settings.device, scheduler=settings.scheduler,
                          workers=settings.workers, shard_size=settings.shard_size,
                          batch_size=settings.batch_size, seed=settings.seed, checkpoint_sha256=gen.sha256,
                          precision=settings.precision)
    return Result(**write_manifest(folder, manifest))


def verify(result: Result) -> None:
    """Every image the manifest says was written exists."""
    manifest = read_table(result.manifest, MANIFEST_PATHS, keep_default_na=False)
    paths = [p for p, status in zip(manifest["path"], manifest["status"]) if status != "skipped"]
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise RuntimeError(f"synthesis in {result.images} is incomplete: {len(absent)} of {len(paths)} images "
                           f"are missing (e.g. {absent[0]})")
