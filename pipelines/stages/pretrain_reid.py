"""Stage: pretrain the re-ID model on the auxiliary identities (``prepare_auxiliary``), the role
ImageNet plays for the paper's baseline, for ``reid.model.weights=auxiliary``. The model, input,
batch and precision are the experiment's (``reid.*``), the schedule is ``pretrain.*``; its seed is
``pretrain.seed``, not the run's, so every portion, seed and method of a sweep shares one stage.
``pretrain.images`` and ``pretrain.per_id`` train it on a subset of the auxiliary images
(``synthmarket.auxiliary_subset``): the regime preset's view start, which lacks the views the
experiment's missing images show."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import plan
from pipelines.config import PipelineConfig
from pipelines.stage_names import PREPARE_AUXILIARY, PRETRAIN_REID
from pipelines.stages import Instance, same, train_reid
from reid.trainer import ReidTrainer
from runtime.atomic import atomic_write_text
from synthmarket.auxiliary_subset import subset_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Settings(train_reid.Settings):
    """The pretraining run's config, less its folder and training root; ``images`` and ``per_id``: the
    auxiliary subset (in the fingerprint only where it is not every image, so caches of the full-set
    start made before these keys stay valid)."""

    images: str = "all"
    per_id: int = 0

    @property
    def subset(self) -> bool:
        """Whether the start sees only part of the auxiliary images."""
        return self.images != "all" or self.per_id > 0

    def fingerprint(self) -> dict[str, Any]:
        tree = super().fingerprint()
        if self.subset:
            tree["subset"] = {"images": self.images, "per_id": self.per_id}
        return tree


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
                                             data=dataclasses.replace(reid.data, root="", manifest="")),
                    images=p.images, per_id=p.per_id)


def check(cfg: PipelineConfig) -> None:
    """A subset needs SynthMarket's auxiliary manifest (the view of each image), known before any stage."""
    p = cfg.pretrain
    if plan.pretrains(cfg) and settings(cfg).subset and cfg.data.dataset != "synthmarket":
        raise ValueError(f"pretrain.images={p.images} pretrain.per_id={p.per_id}: auxiliary subsets need SynthMarket's "
                         "auxiliary people (their manifest records each image's view and walk); with "
                         f"data.dataset={cfg.data.dataset} use pretrain.images=all pretrain.per_id=0")


def instances(cfg: PipelineConfig) -> list[Instance]:
    return [Instance(PRETRAIN_REID, settings(cfg), same(PREPARE_AUXILIARY))] if plan.pretrains(cfg) else []


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    reid, aux_root = settings.reid, deps["prepare_auxiliary"].root
    data = dataclasses.replace(reid.data, root=aux_root)
    if settings.subset:
        subset = subset_manifest(aux_root, settings.images, settings.per_id)
        atomic_write_text(folder / "subset.csv", subset.to_csv(index=False))
        log.info("pretrain_reid: %d images of %d auxiliary people (%s, at most %s each)", len(subset),
                 subset["identity"].nunique(), settings.images, settings.per_id or "all")
        data = dataclasses.replace(reid.data, root="", manifest=str(folder / "subset.csv"))
    summary = ReidTrainer(dataclasses.replace(reid, out=str(folder / "train"), data=data)).fit()
    return Result(checkpoint=str(folder / "train" / "checkpoint.pt"), n_classes=summary["n_classes"],
                  train_images=summary["train_images"],
                  summary={k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))})
