"""The re-ID baseline training run's typed config; presets in ``reid/presets/*.yaml`` fill it.

Defaults are layumi's ResNet-50 baseline as the paper used it (``preset=market1501`` states them
again, explicitly): 256 x 128 bicubic input, pad 10 + random crop + flip, SGD (momentum 0.9,
Nesterov, weight decay 5e-4) at lr 0.05 for the new head and 0.005 for the ImageNet trunk, x0.1 at
epoch 40, 60 epochs, batch 32, cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reid.losses import ReidLossConfig
from reid.model import ModelConfig
from runtime.config import Bounded, param, resolve, run_only_keys
from runtime.training.settings import RunSettings, setting

PRESETS_DIR = Path(__file__).parent / "presets"
SAMPLERS = ("RandomSampler", "RandomIdentitySampler")


@dataclass
class ReidDataConfig(Bounded):
    root: str = param("data/Market-1501-v15.09.15", "training folder in Market layout (full, reduced or "
                      "augmented); its bounding_box_train/ is used")
    manifest: str = param("", "instead of root: a CSV manifest (path, identity, camera, split) whose "
                          "split=train rows are the training set")
    image_size: tuple[int, int] = param((256, 128), "input size (H, W), bicubic resize", at_least=16)
    pad: int = param(10, "zero padding before the random crop back to image_size (0 = no crop)", at_least=0)
    flip: bool = param(True, "random horizontal flip")
    erasing_p: float = param(0.0, "random erasing probability (torchreid's RandomErasing; 0 = off, the paper's)",
                             at_least=0.0, at_most=1.0)
    color_jitter: float = param(0.0, "colour jitter strength s: brightness, contrast and saturation x [1-s, 1+s], hue "
                                "+-s/4 (torchvision's ColorJitter), so that a camera's colour cast stops being an "
                                "identity cue; 0 = off, the paper's", at_least=0.0, at_most=1.0)
    sampler: str = param("RandomSampler", "RandomSampler (shuffle, the baseline) or torchreid's "
                         "RandomIdentitySampler (batch = batch_size / num_instances identities)", choices=SAMPLERS)
    num_instances: int = param(4, "images per identity in a batch (RandomIdentitySampler only)")


@dataclass
class OptimConfig(Bounded):
    epochs: int = param(60, "training epochs (one pass over the training images each)", at_least=1)
    batch_size: int = param(32, "images per step (the last incomplete batch of an epoch is dropped; BatchNorm "
                            "needs 2 images)", at_least=2)
    lr: float = param(0.05, "SGD learning rate of the new head (bottleneck + classifier)")
    backbone_lr_mult: float = param(0.1, "trunk learning rate = lr x this (0.005 in the baseline)")
    momentum: float = param(0.9, "SGD momentum")
    nesterov: bool = param(True, "Nesterov momentum")
    weight_decay: float = param(5e-4, "SGD weight decay")
    step_size: int = param(40, "epochs between learning-rate decays", at_least=1)
    gamma: float = param(0.1, "learning-rate decay factor")
    warmup_epochs: float = param(0.0, "layumi's warm-up: the loss is scaled from 0.1 up to 1 linearly over these "
                                 "first epochs (0 = none, the paper's setting; helps from random init)", at_least=0.0)


@dataclass
class ReidTrainConfig(RunSettings):
    """The re-ID run: the shared training keys (``runtime.training.RunSettings``: out, seed, device,
    precision, channels_last, threads, resume, checkpoint_every, log_every, num_workers) and its own."""

    out: str = setting("out", "runs/reid")
    checkpoint_every: int = setting("checkpoint_every", 500)
    log_every: int = setting("log_every", 20)
    progress: bool = param(True, "progress bars", run_only=True)
    model: ModelConfig = param(default_factory=ModelConfig, help="network")
    data: ReidDataConfig = param(default_factory=ReidDataConfig, help="training data and augmentation")
    optim: OptimConfig = param(default_factory=OptimConfig, help="optimisation schedule")
    budget: str = param("epochs", "epochs: optim.epochs over this training set (the paper; larger sets get more "
                        "steps); iterations: budget_steps optimiser steps, the same for every training set, with "
                        "the decay and warm-up at the same fractions of training (reid/step_budget.py)",
                        choices=["epochs", "iterations"])
    budget_steps: int = param(0, "budget=iterations: the optimiser steps to train (the pipeline sets the full "
                              "set's: its loader's batches per epoch x optim.epochs); 0 = this set's own", at_least=0)
    loss: ReidLossConfig = param(default_factory=ReidLossConfig, help="training loss")


# The image count the iterations budget was once scaled by; stored configs of older runs hold it.
RETIRED_KEYS = ("budget_images",)


# Keys added since checkpoints were first written, with the value that reproduces the code before them.
ADDED_DATA_KEYS = {"color_jitter": 0.0}


def current_keys(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored config dict (a checkpoint's) without the retired keys and with the keys added since at
    their old behaviour, so older checkpoints still load and resume."""
    current = {k: v for k, v in stored.items() if k not in RETIRED_KEYS}
    if isinstance(current.get("data"), dict):
        current["data"] = {**ADDED_DATA_KEYS, **current["data"]}
    return current


# Keys that change how a run is executed, not what it computes (declared run_only): a resumed run may change them.
RUN_CONTROL_KEYS = run_only_keys(ReidTrainConfig)


def load_reid_config(*overrides: str) -> ReidTrainConfig:
    """The config the command line would build from these ``key=value`` strings (``preset=``
    included), for Python users and tests: ``load_reid_config("preset=synth", "optim.epochs=2")``."""
    return resolve(ReidTrainConfig, overrides, PRESETS_DIR)
