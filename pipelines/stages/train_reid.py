"""Stage 6: train the ResNet-50 re-ID baseline on one training folder (reduced, augmented or full)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from reid.market_index import index_market
from reid.train_config import ReidTrainConfig
from reid.trainer import ReidTrainer
from runtime.config import to_dict

RUN_ONLY = ("out", "device", "num_workers", "threads", "resume", "log_every", "progress", "data")


def reid_config(cfg: PipelineConfig, synthesised: bool) -> ReidTrainConfig:
    """``reid.*``, with the pipeline's label rule for synthesised images (``augment.label``) on the
    training sets that hold some (``synthesised``); the others keep hard labels and share their stage."""
    if not synthesised:
        return cfg.reid
    loss = dataclasses.replace(cfg.reid.loss, generated_label=cfg.augment.label,
                               generated_epsilon=cfg.augment.label_epsilon)
    return dataclasses.replace(cfg.reid, loss=loss)


def inputs(cfg: PipelineConfig, synthesised: bool = False) -> dict[str, Any]:
    reid = to_dict(reid_config(cfg, synthesised))
    settings = {k: v for k, v in reid.items() if k not in RUN_ONLY}
    settings["data"] = {k: v for k, v in reid["data"].items() if k not in ("root", "manifest")}
    settings["seed"] = cfg.seed
    return {"reid": settings}


def run(folder: Path, cfg: PipelineConfig, root: str, pretrained: str = "", full_root: str = "",
        synthesised: bool = False) -> dict[str, Any]:
    """``pretrained``: the pretrain_reid stage's checkpoint, the start when ``reid.model.weights=auxiliary``;
    ``full_root``: the dataset, whose training-set size is the step budget of ``reid.budget=iterations``."""
    model = cfg.reid.model
    if model.weights == "auxiliary":
        model = dataclasses.replace(model, weights=pretrained)
    budget_images = cfg.reid.budget_images
    if cfg.reid.budget == "iterations":
        budget_images = len(index_market(full_root or root, splits=("train",), progress=False))
    train = dataclasses.replace(reid_config(cfg, synthesised), out=str(folder / "train"), device=cfg.device, seed=cfg.seed, model=model,
                                budget_images=budget_images,
                                data=dataclasses.replace(cfg.reid.data, root=root, manifest=""))
    summary = ReidTrainer(train).fit()
    return {"checkpoint": str(folder / "train" / "checkpoint.pt"), "root": root,
            "start": "auxiliary" if pretrained else cfg.reid.model.weights,
            "summary": {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}}
