"""Stage 6: train the ResNet-50 re-ID baseline on one method's training folder (reduced, augmented,
copied or full; ``pipelines.methods.training_set``). Methods on the same folder share one instance.

Under ``reid.budget=iterations`` every training set, the full one included, trains the full set's
optimiser steps (``reid.step_budget``), counted on ``prepare_data``'s folder. The full set's run under
``epochs`` cannot stand in for it: torchreid's identity sampler ends a pass a batch early at random,
so its step count is known only once it has run."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from pipelines import methods
from pipelines.config import PipelineConfig
from pipelines.stages import Instance
from reid.data_order import DATA_ORDER_VERSION
from reid.step_budget import budget_steps, folder_counts
from reid.train_config import ReidTrainConfig
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
    if reid.budget == "iterations":
        tree["budget_unit"] = "optimizer_steps"
    return tree


def reid_config(cfg: PipelineConfig, synthesised: bool) -> ReidTrainConfig:
    """``reid.*``, with the pipeline's label rule for synthesised images (``augment.label``) on the
    training sets that hold some (``synthesised``); the others keep hard labels and share their stage."""
    if not synthesised:
        return cfg.reid
    loss = dataclasses.replace(cfg.reid.loss, generated_label=cfg.augment.label,
                               generated_epsilon=cfg.augment.label_epsilon)
    return dataclasses.replace(cfg.reid, loss=loss)


def labelled_view(cfg: PipelineConfig) -> PipelineConfig:
    """``cfg`` as a training set with generated or copied images sees it: ``reid.loss`` carries ``augment.label``."""
    view = copy.copy(cfg)  # not dataclasses.replace: PipelineConfig refuses a user-set generated_label on purpose
    view.reid = reid_config(cfg, synthesised=True)
    return view


def instances(cfg: PipelineConfig) -> list[Instance]:
    out = []
    trainings = methods.trainings(cfg)
    for method in cfg.methods:
        if trainings[method] != f"train_reid[{method}]":
            continue  # trains on a set another method already trains on
        source = methods.training_set(cfg, method)
        deps = {"training_set": source}
        if cfg.reid.model.weights == "auxiliary":
            deps["pretrain_reid"] = "pretrain_reid"
        if cfg.reid.budget == "iterations" and source != methods.FULL:
            deps["prepare_data"] = "prepare_data"  # the full set's steps are the step budget
        synthesised = source not in (methods.REDUCED, methods.FULL)  # augment.label applies
        out.append(Instance(trainings[method], deps, labelled_view(cfg) if synthesised else None))
    return out


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    return {"reid": {**reid_inputs(cfg.reid), "seed": cfg.seed}}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    """``deps``: ``training_set`` (its ``root``), ``pretrain_reid`` (the start when
    ``reid.model.weights=auxiliary``), ``prepare_data`` (the full set, whose optimiser steps are the
    budget of ``reid.budget=iterations``; the full set's own training reads its ``training_set``)."""
    root = deps["training_set"]["root"]
    pretrained = deps.get("pretrain_reid", {}).get("checkpoint", "")
    model = cfg.reid.model
    if model.weights == "auxiliary":
        model = dataclasses.replace(model, weights=pretrained)
    steps = 0
    if cfg.reid.budget == "iterations":
        full_root = deps["prepare_data"]["root"] if "prepare_data" in deps else root
        steps = budget_steps(folder_counts(full_root), cfg.reid.data, cfg.reid.optim)
    train = dataclasses.replace(cfg.reid, out=str(folder / "train"), device=cfg.device, seed=cfg.seed, model=model,
                                budget_steps=steps,
                                data=dataclasses.replace(cfg.reid.data, root=root, manifest=""))
    summary = ReidTrainer(train).fit()
    return {"checkpoint": str(folder / "train" / "checkpoint.pt"), "root": root,
            "start": "auxiliary" if pretrained else cfg.reid.model.weights,
            "summary": {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}}
