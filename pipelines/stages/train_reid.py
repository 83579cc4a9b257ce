"""Stage 6: train the ResNet-50 re-ID baseline on one method's training folder (reduced, augmented,
copied or full; ``pipelines.plan.training_set``). Methods on the same folder share one instance.

Under ``reid.budget=iterations`` every training set, the full one included, trains the full set's
optimiser steps (``reid.step_budget``), counted on ``prepare_data``'s folder. The full set's run under
``epochs`` cannot stand in for it: torchreid's identity sampler ends a pass a batch early at random,
so its step count is known only once it has run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import plan
from pipelines.config import PipelineConfig
from pipelines.stage_names import PREPARE_DATA, PRETRAIN_REID, REDUCED
from pipelines.stages import Instance, StageOutput, StageSettings
from reid.data_order import DATA_ORDER_VERSION
from reid.model import released_start
from reid.step_budget import budget_steps, folder_counts
from reid.train_config import ADDED_DATA_KEYS, ReidTrainConfig
from reid.trainer import ReidTrainer
from runtime.config import content

# Set by the pipeline from the upstream stages' results (whose fingerprints cover them), not read from reid.*.
FROM_DEPENDENCIES = ("data.root", "data.manifest", "budget_steps")


def reid_inputs(reid: ReidTrainConfig) -> dict[str, Any]:
    """``reid.*`` as a re-ID training stage's fingerprint holds it, without ``FROM_DEPENDENCIES``.
    ``budget_images: 0`` stands where that retired key stood; ``budget_unit`` keeps the step-counted
    ``iterations`` runs apart from the image-scaled ones cached before. ``data_order`` is the version of
    the training data order (``reid.data_order``): a new order gives other weights, so stages trained
    under another one are never reused for this code's."""
    tree = {**content(reid, drop=FROM_DEPENDENCIES), "budget_images": 0, "data_order": DATA_ORDER_VERSION}
    # keys added since, at the value that reproduces the code before them: left out, so those caches stay valid
    tree["data"] = {k: v for k, v in tree["data"].items() if k not in ADDED_DATA_KEYS or v != ADDED_DATA_KEYS[k]}
    if reid.budget == "iterations":
        tree["budget_unit"] = "optimizer_steps"
    release = released_start(reid.model.weights, reid.model.backbone)
    if release is not None:  # a released start: its content, not only its name
        tree["model"]["weights_sha256"] = release.sha256
    return tree


@dataclass(frozen=True, kw_only=True)
class Settings(StageSettings):
    """The training's config: ``reid.*`` with the run's seed and device, and the label rule of
    synthesised images on the training sets that hold some."""

    reid: ReidTrainConfig

    def fingerprint(self) -> dict[str, Any]:
        return {"reid": reid_inputs(self.reid)}


@dataclass(frozen=True, kw_only=True)
class Training(StageOutput):
    """A re-ID training's checkpoint and its trainer's summary (plain values: steps, epochs, losses)."""

    checkpoint: str
    summary: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Result(Training):
    """``root``: the training set; ``start``: the trunk it started from (``auxiliary``: the pretrained one)."""

    root: str
    start: str


def reid_config(cfg: PipelineConfig, synthesised: bool) -> ReidTrainConfig:
    """``reid.*``, with the pipeline's label rule for synthesised images (``augment.label``) on the
    training sets that hold some (``synthesised``); the others keep hard labels and share their stage."""
    if not synthesised:
        return cfg.reid
    loss = dataclasses.replace(cfg.reid.loss, generated_label=cfg.augment.label,
                               generated_epsilon=cfg.augment.label_epsilon)
    return dataclasses.replace(cfg.reid, loss=loss)


def settings(cfg: PipelineConfig, synthesised: bool = False) -> Settings:
    """The settings of a training on a set with (``synthesised``) or without generated or copied images."""
    return Settings(reid=dataclasses.replace(reid_config(cfg, synthesised), seed=cfg.seed, device=cfg.device))


def instances(cfg: PipelineConfig) -> list[Instance]:
    out = []
    for method, training in plan.trainings(cfg).items():
        if training.variant != method:
            continue  # trains on a set another method already trains on
        source = plan.training_set(cfg, method)
        deps = {"training_set": source}
        if plan.pretrains(cfg):
            deps["pretrain_reid"] = PRETRAIN_REID
        if cfg.reid.budget == "iterations" and source != PREPARE_DATA:
            deps["prepare_data"] = PREPARE_DATA  # the full set's steps are the step budget
        out.append(Instance(training, settings(cfg, synthesised=source not in (REDUCED, PREPARE_DATA)), deps))
    return out


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    """``deps``: ``training_set`` (its ``root``), ``pretrain_reid`` (the start when the run pretrains),
    ``prepare_data`` (the full set, whose optimiser steps are the budget of ``reid.budget=iterations``;
    the full set's own training reads its ``training_set``)."""
    reid = settings.reid
    root = deps["training_set"].root
    pretrained = deps["pretrain_reid"].checkpoint if "pretrain_reid" in deps else ""
    model = dataclasses.replace(reid.model, weights=pretrained) if pretrained else reid.model
    steps = 0
    if reid.budget == "iterations":
        full_root = deps["prepare_data"].root if "prepare_data" in deps else root
        steps = budget_steps(folder_counts(full_root), reid.data, reid.optim)
    train = dataclasses.replace(reid, out=str(folder / "train"), model=model, budget_steps=steps,
                                data=dataclasses.replace(reid.data, root=root, manifest=""))
    summary = ReidTrainer(train).fit()
    return Result(checkpoint=str(folder / "train" / "checkpoint.pt"), root=root,
                  start="auxiliary" if pretrained else reid.model.weights,
                  summary={k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))})
