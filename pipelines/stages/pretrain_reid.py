"""Stage: pretrain the re-ID model on the auxiliary identities (``prepare_auxiliary``), the role
ImageNet plays for the paper's baseline, for ``reid.model.weights=auxiliary``. The model, input,
batch and precision are the experiment's (``reid.*``), the schedule is ``pretrain.*``; its seed is
``pretrain.seed``, not the run's, so every portion, seed and method of a sweep shares one stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import plan
from pipelines.config import PipelineConfig
from pipelines.stage_names import PREPARE_AUXILIARY, PRETRAIN_REID
from pipelines.stages import Instance, same, train_reid
from reid.trainer import ReidTrainer

Settings = train_reid.Settings  # the pretraining run's config, less its folder and training root


@dataclass(frozen=True, kw_only=True)
class Result(train_reid.Training):
    """``n_classes``: the auxiliary identities; ``train_images``: their images."""

    n_classes: int
    train_images: int


def settings(cfg: PipelineConfig) -> Settings:
    """The experiment's re-ID settings with the ``pretrain`` schedule (its own epochs: the experiment's
    step budget, ``reid.budget``, is about the experiment's training sets)."""
    p, reid = cfg.pretrain, cfg.reid
    optim = dataclasses.replace(reid.optim, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr,
                                backbone_lr_mult=p.backbone_lr_mult, step_size=p.step_size,
                                warmup_epochs=p.warmup_epochs)
    return Settings(reid=dataclasses.replace(reid, out="", device=cfg.device, seed=p.seed, optim=optim,
                                             budget="epochs", budget_steps=0,
                                             model=dataclasses.replace(reid.model, weights=p.weights),
                                             data=dataclasses.replace(reid.data, root="", manifest="")))


def instances(cfg: PipelineConfig) -> list[Instance]:
    return [Instance(PRETRAIN_REID, settings(cfg), same(PREPARE_AUXILIARY))] if plan.pretrains(cfg) else []


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    reid = settings.reid
    summary = ReidTrainer(dataclasses.replace(reid, out=str(folder / "train"), data=dataclasses.replace(
        reid.data, root=deps["prepare_auxiliary"].root))).fit()
    return Result(checkpoint=str(folder / "train" / "checkpoint.pt"), n_classes=summary["n_classes"],
                  train_images=summary["train_images"],
                  summary={k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))})
