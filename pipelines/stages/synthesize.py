"""Stage 4: re-synthesise every missing training image (``augment.select_conditions``,
``plan_synthesis``, ``synthesize``) on the configured dask scheduler; writes the images and the
provenance manifest. ``run_copy`` is the same plan with the condition images copied instead
(``augment.copy_control``, method ``copy``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from augment import copy_control, plan_synthesis, select_conditions, synthesize
from pipelines.config import PipelineConfig, effective_precision
from pona_model.annotations import read_annotations
from runtime.atomic import atomic_path


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    a = cfg.augment
    return {"condition_policy": a.condition_policy, "unusable_pose": a.unusable_pose, "seed": cfg.seed,
            "precision": effective_precision(cfg)}


def _plan(cfg: PipelineConfig, deps: dict[str, Any]) -> tuple[pd.DataFrame, dict, Path]:
    data, sub = deps["prepare_data"], deps["subsample"]
    kept, missing = pd.read_csv(sub["kept"]), pd.read_csv(sub["missing"])
    keypoints = read_annotations(data["annotations"])
    images = Path(data["root"]) / "bounding_box_train"
    plan = select_conditions(missing, kept, cfg.augment.condition_policy, cfg.seed, keypoints=keypoints)
    return plan_synthesis(plan, keypoints, images, cfg.augment.unusable_pose), keypoints, images


def _finish(folder: Path, manifest: pd.DataFrame) -> dict[str, Any]:
    with atomic_path(folder / "synthesis.csv") as tmp:
        manifest.to_csv(tmp, index=False)
    counts = manifest["status"].value_counts().to_dict()
    return {"manifest": str(folder / "synthesis.csv"), "images": str(folder / "images"),
            "counts": {k: int(v) for k, v in counts.items()}}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    gen = deps["train_generator"]
    plan, keypoints, images = _plan(cfg, deps)
    manifest = synthesize(plan, keypoints, checkpoint=gen["checkpoint"], images_dir=images,
                          out_dir=folder / "images", device=cfg.device, scheduler=cfg.dask.scheduler,
                          workers=cfg.dask.workers, shard_size=cfg.augment.shard_size,
                          batch_size=cfg.augment.batch_size, seed=cfg.seed, checkpoint_sha256=gen["sha256"],
                          precision=cfg.precision)
    return _finish(folder, manifest)


def copy_inputs(cfg: PipelineConfig) -> dict[str, Any]:
    copied = {k: v for k, v in inputs(cfg).items() if k != "precision"}  # no generator runs
    return {**copied, "control": "copy_condition"}


def run_copy(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    plan, _, images = _plan(cfg, deps)
    return _finish(folder, copy_control(plan, images_dir=images, out_dir=folder / "images", seed=cfg.seed))


def verify(result: dict[str, Any]) -> None:
    """Every image the manifest says was written exists."""
    manifest = pd.read_csv(result["manifest"], keep_default_na=False)
    paths = [p for p, status in zip(manifest["path"], manifest["status"]) if status != "skipped"]
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise RuntimeError(f"synthesis in {result['images']} is incomplete: {len(absent)} of {len(paths)} images "
                           f"are missing (e.g. {absent[0]})")
