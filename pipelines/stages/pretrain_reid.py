"""Stage: pretrain the re-ID model on the auxiliary identities (``prepare_auxiliary``), the role
ImageNet plays for the paper's baseline, for ``reid.model.weights=auxiliary``. The model, input,
batch and precision are the experiment's (``reid.*``), the schedule is ``pretrain.*``; its seed is
``pretrain.seed``, not the run's, so every portion, seed and method of a sweep shares one stage."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.stages import Instance, same, train_reid
from reid.train_config import ReidTrainConfig
from reid.trainer import ReidTrainer


def needed(cfg: PipelineConfig) -> bool:
    return cfg.reid.model.weights == "auxiliary"


def instances(cfg: PipelineConfig) -> list[Instance]:
    return [Instance("pretrain_reid", same("prepare_auxiliary"))] if needed(cfg) else []


def config(cfg: PipelineConfig, folder: Path, root: str) -> ReidTrainConfig:
    """The pretraining run's config: the experiment's re-ID settings with the ``pretrain`` schedule (its
    own epochs: the experiment's step budget, ``reid.budget``, is about the experiment's training sets)."""
    p, reid = cfg.pretrain, cfg.reid
    optim = dataclasses.replace(reid.optim, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr,
                                backbone_lr_mult=p.backbone_lr_mult, step_size=p.step_size,
                                warmup_epochs=p.warmup_epochs)
    return dataclasses.replace(reid, out=str(folder / "train"), device=cfg.device, seed=p.seed, optim=optim,
                               budget="epochs", budget_steps=0,
                               model=dataclasses.replace(reid.model, weights=p.weights),
                               data=dataclasses.replace(reid.data, root=root, manifest=""))


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    return {"reid": train_reid.reid_inputs(config(cfg, Path("."), ""))}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    summary = ReidTrainer(config(cfg, folder, deps["prepare_auxiliary"]["root"])).fit()
    return {"checkpoint": str(folder / "train" / "checkpoint.pt"), "n_classes": summary["n_classes"],
            "train_images": summary["train_images"],
            "summary": {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}}
