"""Stage 4: re-synthesise every missing training image (``augment.select_conditions``,
``plan_synthesis``, ``synthesize``) on the configured dask scheduler; writes the images and the
provenance manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from augment import plan_synthesis, select_conditions, synthesize
from pipelines.config import PipelineConfig
from pona_model.annotations import read_annotations
from pona_model.atomic import atomic_path


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    a = cfg.augment
    return {"condition_policy": a.condition_policy, "unusable_pose": a.unusable_pose, "seed": cfg.seed}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    data, sub, gen = deps["prepare_data"], deps["subsample"], deps["train_generator"]
    kept, missing = pd.read_csv(sub["kept"]), pd.read_csv(sub["missing"])
    keypoints = read_annotations(data["annotations"])
    images = Path(data["root"]) / "bounding_box_train"
    plan = select_conditions(missing, kept, cfg.augment.condition_policy, cfg.seed, keypoints=keypoints)
    plan = plan_synthesis(plan, keypoints, images, cfg.augment.unusable_pose)
    manifest = synthesize(plan, keypoints, checkpoint=gen["checkpoint"], images_dir=images,
                          out_dir=folder / "images", device=cfg.device, scheduler=cfg.dask.scheduler,
                          workers=cfg.dask.workers, shard_size=cfg.augment.shard_size,
                          batch_size=cfg.augment.batch_size, seed=cfg.seed, checkpoint_sha256=gen["sha256"])
    with atomic_path(folder / "synthesis.csv") as tmp:
        manifest.to_csv(tmp, index=False)
    counts = manifest["status"].value_counts().to_dict()
    return {"manifest": str(folder / "synthesis.csv"), "images": str(folder / "images"),
            "counts": {k: int(v) for k, v in counts.items()}}
