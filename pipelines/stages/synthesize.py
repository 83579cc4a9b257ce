"""Stage 4: re-synthesise every missing training image (``augment.select_conditions``,
``plan_synthesis``, ``synthesize``) with one method's generator (PoNA's, or PATN's through
``pipelines.config.generator_view``) on the configured dask scheduler; writes the images and the
provenance manifest. ``copy_conditions`` is the same plan with the condition images copied instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from augment import plan_synthesis, select_conditions, synthesize
from pipelines import methods
from pipelines.config import PipelineConfig, effective_precision, generator_view
from pipelines.stage_tables import read_table, write_table
from pipelines.stages import Instance, same
from poseformats.annotations import read_annotations


def instances(cfg: PipelineConfig) -> list[Instance]:
    return [Instance(m.fills, {**same("prepare_data", "subsample"),
                               "train_generator": methods.generator_stage(m.generator)}, generator_view(cfg, m.generator))
            for m in methods.filling(cfg) if m.generator]


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    a = cfg.augment
    return {"condition_policy": a.condition_policy, "unusable_pose": a.unusable_pose, "seed": cfg.seed,
            "precision": effective_precision(cfg)}


def synthesis_plan(cfg: PipelineConfig, deps: dict[str, Any]) -> tuple[pd.DataFrame, dict, Path]:
    data, sub = deps["prepare_data"], deps["subsample"]
    kept, missing = read_table(sub["kept"]), read_table(sub["missing"])
    keypoints = read_annotations(data["annotations"])
    images = Path(data["root"]) / "bounding_box_train"
    plan = select_conditions(missing, kept, cfg.augment.condition_policy, cfg.seed, keypoints=keypoints)
    return plan_synthesis(plan, keypoints, images, cfg.augment.unusable_pose), keypoints, images


MANIFEST_PATHS = ("path", "condition_path", "checkpoint")  # written relative to the manifest's folder


def write_manifest(folder: Path, manifest: pd.DataFrame) -> dict[str, Any]:
    write_table(manifest, folder / "synthesis.csv", MANIFEST_PATHS)
    counts = manifest["status"].value_counts().to_dict()
    return {"manifest": str(folder / "synthesis.csv"), "images": str(folder / "images"),
            "counts": {k: int(v) for k, v in counts.items()}}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    gen = deps["train_generator"]
    plan, keypoints, images = synthesis_plan(cfg, deps)
    manifest = synthesize(plan, keypoints, checkpoint=gen["checkpoint"], images_dir=images,
                          out_dir=folder / "images", device=cfg.device, scheduler=cfg.dask.scheduler,
                          workers=cfg.dask.workers, shard_size=cfg.augment.shard_size,
                          batch_size=cfg.augment.batch_size, seed=cfg.seed, checkpoint_sha256=gen["sha256"],
                          precision=cfg.precision)
    return write_manifest(folder, manifest)


def verify(result: dict[str, Any]) -> None:
    """Every image the manifest says was written exists."""
    manifest = read_table(result["manifest"], MANIFEST_PATHS, keep_default_na=False)
    paths = [p for p, status in zip(manifest["path"], manifest["status"]) if status != "skipped"]
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise RuntimeError(f"synthesis in {result['images']} is incomplete: {len(absent)} of {len(paths)} images "
                           f"are missing (e.g. {absent[0]})")
