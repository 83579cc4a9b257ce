"""The generator training run's typed config; presets in ``pona_model/presets/*.yaml`` fill it.

Defaults are the authors' Market-1501 settings (docs/architecture.md, "Losses and training"), so a preset only
states where it differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pona_model.generator import GeneratorConfig
from runtime.config import Bounded, param, resolve, run_only_keys
from runtime.training.settings import RunSettings, setting

PRESETS_DIR = Path(__file__).parent / "presets"


@dataclass
class DataConfig:
    root: str = param("", "dataset root; relative paths below are resolved against it")
    images: str = param("bounding_box_train", "training images folder (PATN: train/)")
    annotations: str = param("market-annotation-train.csv", "PATN annotation CSV of the training images")
    pairs: str = param("market-pairs-train.csv", "PATN pairs CSV (from,to) of training pairs")
    sample_images: str = param("bounding_box_test", "images folder of the pairs shown in sample grids")
    sample_annotations: str = param("market-annotation-test.csv", "annotation CSV for the sample pairs")
    sample_pairs: str = param("market-pairs-test.csv", "pairs CSV whose first rows are shown in sample grids")

    def path(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() or not self.root else Path(self.root).expanduser() / p


@dataclass
class DiscriminatorConfig:
    ndf: int = param(64, "discriminator width (channels after the first conv)")
    n_res_blocks: int = param(3, "residual blocks at 4*ndf channels")


@dataclass
class LossConfig:
    gan_mode: str = param("bce", "GAN loss: bce (sigmoid + BCE, Market) or lsgan (least squares, "
                          "DeepFashion)", choices=["bce", "lsgan"])
    lambda_gan: float = param(5.0, "weight of the GAN terms (0 = L1 + perceptual only: the Ds are then not run)")
    lambda_l1: float = param(10.0, "weight of the pixel L1 term")
    lambda_perceptual: float = param(10.0, "weight of the perceptual term (loss.perceptual_net)")
    perceptual_net: str = param("vgg19", "network of the perceptual term: vgg19 (the paper's ImageNet VGG-19 "
                                "relu1_2) or random (a fixed randomly initialised VGG-style net, relu1_2 + "
                                "relu2_2, needs no download; Liu et al. 2021)", choices=["vgg19", "random"])
    gan_start: int = param(0, "iteration at which the GAN terms join G's loss (before it: L1 + perceptual "
                           "only, an L1 warm-up; the Ds train throughout). Paper: 0")
    body_l1_weight: float = param(0.0, "extra L1 weight near the target joints: pixel weight 1 + w * max of the "
                                  "target pose maps, normalised (0 = the paper's plain L1)")
    lambda_identity: float = param(0.0, "weight of the identity term: cosine distance between a frozen re-ID "
                                   "trunk's features of generated and target (0 = off, the paper; DG-Net, "
                                   "FD-GAN)", added=True)
    identity_net: str = param("released:view-start-synth", "the identity term's re-ID trunk: released:NAME, a "
                              "ResNet trunk made by python -m reid.release that never saw a test person",
                              added=True)
    vgg_weights: str = param("", "VGG-19 state dict file; empty = torchvision's file in the torch hub cache")
    vgg_missing: str = param("error", "when VGG-19 weights are absent: error (stop and say where to put "
                             "them) or disable (train without the perceptual term, recorded in the "
                             "checkpoint and log)", choices=["error", "disable"])


@dataclass
class ScheduleConfig(Bounded):
    batch_size: int = param(32, "pairs per iteration", at_least=1)
    lr: float = param(2e-4, "Adam learning rate of G and both Ds")
    beta1: float = param(0.5, "Adam beta1")
    beta2: float = param(0.999, "Adam beta2")
    gate_lr_mult: float = param(1.0, "learning-rate multiplier of the cross-attention gates gamma (1 = the "
                                "paper's single rate)")
    pool_size: int = param(50, "history pool of generated images shown to the Ds (0 = none)")
    pairs_per_epoch: int = param(4000, "an 'epoch' is this many randomly drawn training pairs", at_least=1)
    n_epochs: int = param(500, "epochs at constant learning rate", at_least=0)
    n_epochs_decay: int = param(200, "epochs with the learning rate decaying linearly to 0", at_least=0)

    def iterations(self) -> int:
        return -(-(self.n_epochs + self.n_epochs_decay) * self.pairs_per_epoch // self.batch_size)


@dataclass
class TrainConfig(RunSettings):
    """The generator's run: the shared training keys (``runtime.training.RunSettings``: out, seed, device,
    precision, channels_last, threads, resume, checkpoint_every, log_every, num_workers) and its own."""

    out: str = setting("out", "runs/pona")
    channels_last: bool = setting("channels_last", True)
    amp: bool = param(True, "false forces fp32 whatever precision says (the key of older configs)")
    sample_every: int = param(1000, "iterations between PNG sample grids", run_only=True)
    sample_count: int = param(6, "pairs shown in each sample grid")
    init: str = param("", "fine-tune: start the networks from this generator (a training's or an imported "
                      "checkpoint, or released:<name>, verified by its sha256) instead of at random; optimisers, "
                      "history pools and this run's schedule start fresh at iteration 0. The discriminators come "
                      "too when the start holds them for the same discriminator config. Empty = the paper's "
                      "random start", added=True)
    generator: GeneratorConfig = param(default_factory=GeneratorConfig, help="generator architecture")
    discriminator: DiscriminatorConfig = param(default_factory=DiscriminatorConfig, help="discriminators")
    loss: LossConfig = param(default_factory=LossConfig, help="losses")
    schedule: ScheduleConfig = param(default_factory=ScheduleConfig, help="optimisation schedule")
    data: DataConfig = param(default_factory=DataConfig, help="training data")

# Keys that change how a run is executed but not what it computes (declared run_only): a resumed run may change them.
RUN_CONTROL_KEYS = run_only_keys(TrainConfig)


def load_train_config(*overrides: str) -> TrainConfig:
    """The config the command line would build from these ``key=value`` strings (``preset=`` included),
    for Python users and tests: ``load_train_config("preset=market1501", "generator.n_blocks=2")``."""
    return resolve(TrainConfig, overrides, PRESETS_DIR)
