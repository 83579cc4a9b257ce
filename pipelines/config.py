"""The pipeline's typed config. Nested groups reuse the components' own configs, so every knob of
SynthMarket, the generator trainer and the re-ID trainer is reachable from the command line:
``data.synthmarket.n_train_ids=50``, ``generator.train.schedule.n_epochs=5``, ``reid.optim.epochs=10``.
Paths the pipeline decides itself (output folders, data roots of its own stages) are overwritten.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from augment.conditions import POLICIES
from augment.scheduler import check_scheduler
from augment.subsample import check_portion
from augment.synthesis import UNUSABLE_POLICIES
from pipelines import methods as method_table
from pona_model.generator import GeneratorConfig
from pona_model.train_config import PRESETS_DIR as GENERATOR_PRESETS
from pona_model.train_config import TrainConfig
from reid.train_config import PRESETS_DIR as REID_PRESETS
from reid.train_config import ReidTrainConfig
from runtime.config import Bounded, param, resolve
from runtime.device import precision_name, resolve_device, resolve_precision
from runtime.training.settings import setting
from synthmarket.auxiliary_subset import SUBSETS
from synthmarket.config import SynthMarketConfig

PRESETS_DIR = Path(__file__).parent / "presets"


@dataclass
class DataSection:
    dataset: str = param("synthmarket", "synthmarket (generated here) or market1501 (a local copy)",
                         choices=["synthmarket", "market1501"])
    root: str = param("", "market1501: the Market-1501-v15.09.15 folder (or one containing it)")
    annotations: str = param("", "market1501: PATN annotation CSV of bounding_box_train; empty = "
                             "<root>/market-annotation-train.csv, extracted with the pose estimator if absent")
    test_annotations: str = param("", "market1501: annotation CSV of bounding_box_test, for generator metrics")
    test_pairs: str = param("", "market1501: PATN test pairs CSV, for generator metrics")
    synthmarket: SynthMarketConfig = field(default_factory=SynthMarketConfig,
                                           metadata={"help": "SynthMarket settings (its out= is set by the pipeline)"})


TRAIN = "train"  # generator.checkpoint / patn.checkpoint: train the generator here (same as empty)


@dataclass
class GeneratorSection:
    checkpoint: str = param("", "the generator to use: empty or train = train one here (the settings below); "
                            "released = the committed release of this architecture (releases/pona-synth, "
                            "releases/patn-synth; docs/releases.md), released:NAME = releases/NAME, verified "
                            "by sha256; or a checkpoint path (one trained here, or the authors' weights "
                            "imported with python -m pona_model.import_checkpoint)")
    train_on: str = param("kept", "kept: the kept images only (leak-free, but few pairs at small portions); "
                          "auxiliary: the auxiliary identities, people outside the experiment (leak-free, as a "
                          "user would train on another re-ID dataset); full: the whole training set, as the "
                          "paper did (leaky: it has seen the images it stands in for)",
                          choices=["kept", "auxiliary", "full"])
    seed: int = param(-1, "seed of the generator's training and pairs (-1: the run's seed). A sweep over seeds "
                      "may pin it so that one generator serves every seed; the seed spread is then the re-ID's alone")
    train: TrainConfig = param(default_factory=TrainConfig, help="the generator's training (data.* and out are set by "
                               "the pipeline)", presets=GENERATOR_PRESETS, not_from_preset=("out", "data"))

    def __post_init__(self) -> None:
        if self.checkpoint.strip() == TRAIN:  # the explicit spelling of the default: one meaning, one fingerprint
            self.checkpoint = ""


def patn_section() -> GeneratorSection:
    """The ``patn`` method's generator: PATN with its 9 blocks; the presets set its training."""
    return GeneratorSection(train=TrainConfig(out="runs/patn", generator=GeneratorConfig(arch="patn", n_blocks=9)))


@dataclass
class AugmentSection:
    condition_policy: str = param("random", "how a kept image is chosen as condition for a missing one",
                                  choices=list(POLICIES))
    unusable_pose: str = param("skip", "missing images whose pose lacks shoulders or hips: skip them, generate "
                               "anyway, or copy the condition image", choices=list(UNUSABLE_POLICIES))
    shard_size: int = param(256, "images per synthesis task")
    batch_size: int = param(32, "images per generator forward pass")
    link: str = param("hardlink", "how merged training folders reference images", choices=["hardlink", "copy",
                                                                                           "symlink"])
    label: str = param("hard", "re-ID target of a synthesised image (generated, or copied in the copy control): "
                       "hard (the condition's identity, the paper's), lsro (uniform over the identities, Zheng et "
                       "al. ICCV 2017), smooth (hard, smoothed by label_epsilon)", choices=["hard", "lsro", "smooth"])
    label_epsilon: float = param(0.1, "label=smooth: the smoothing epsilon of synthesised images")


@dataclass
class AuxiliarySection(Bounded):
    n_ids: int = param(400, "synthmarket: auxiliary identities rendered once (in neither the train nor the test "
                       "split; the dataset's images unchanged), for reid.model.weights=auxiliary and "
                       "generator.train_on=auxiliary", at_least=1)
    root: str = param("", "market1501: a Market-layout folder of other people (bounding_box_train; PATN's "
                      "market-annotation-train.csv and market-pairs-train.csv for the generator)")


@dataclass
class PretrainSection(Bounded):
    """The pretrain_reid stage: the experiment's re-ID model (``reid.model``, ``reid.data``, batch,
    precision) trained on the auxiliary identities; ``reid.model.weights=auxiliary`` starts from it."""

    weights: str = param("random", "start of the pretraining itself: random or imagenet", choices=["random", "imagenet"])
    epochs: int = param(12, "pretraining epochs on the auxiliary identities", at_least=1)
    batch_size: int = param(32, "images per step (bf16 throughput grows with the batch: bench/reid_step.py --batch)",
                            at_least=2)
    lr: float = param(0.02, "head learning rate (the trunk's is lr x backbone_lr_mult)", above=0.0)
    backbone_lr_mult: float = param(1.0, "trunk learning rate factor (1: a trunk from random initialisation)")
    step_size: int = param(9, "epochs between x0.1 decays", at_least=1)
    warmup_epochs: float = param(1.0, "layumi's warm-up epochs")
    seed: int = param(0, "seed of the pretraining: fixed, so every seed of a sweep shares one pretrained trunk")
    images: str = param("all", "which of each auxiliary person's images it sees (synthmarket.auxiliary_subset): all; "
                        "one_view (their most frequent view only, from every camera: a start that must learn the "
                        "other views from the experiment's images, the regime preset's); one_track (their first "
                        "camera only); SynthMarket only", choices=list(SUBSETS))
    per_id: int = param(0, "at most this many images per auxiliary person, the first by name (0 = no cap)",
                        at_least=0)


@dataclass
class DaskSection:
    scheduler: str = param("inprocess", "inprocess, local (a cluster of worker processes) or a dask scheduler "
                           "address tcp://HOST:PORT")
    workers: int = param(2, "worker processes of a local cluster (one GPU each where GPUs exist)")


@dataclass
class PipelineConfig:
    portion: float = param(0.2, "fraction of each identity's training images kept, in (0, 1]")
    seed: int = param(0, "seed of subsampling, condition choice, generator and re-ID training")
    # Every stage trains and infers on this device in this precision: the trainers' keys, declared once.
    device: str = setting("device", "auto")
    precision: str = setting("precision", "auto")
    out: str = param("runs", "root of run folders and of the shared stage cache")
    verify: str = param("full", "what is checked before a finished stage is reused: full (every output file's "
                        "SHA-256, so any changed byte is seen; measured at most 0.15 s a stage more than size) or "
                        "size (every file's size and the checkpoints' SHA-256: cheaper, but a same-size change to "
                        "an image or table goes unseen); a changed file redoes the stage",
                        choices=["full", "size"], run_only=True)
    methods: list[str] = param(["none", "pona"], method_table.help_text())
    evaluate_generator: bool = param(True, "score the generator on the test pairs (SSIM, PSNR, L1, ...)")
    evaluate_pairs: int = param(200, "test pairs generated and scored by the generator evaluation")
    pose_estimator: str = param("auto", "PCKh's pose estimator in the generator evaluation: auto (synth on "
                                "synthmarket, photo on real data), synth (releases/pose-synth, a CNN for 64 x 32 "
                                "SynthMarket crops) or photo (mediapipe BlazePose, the paper's kind)",
                                choices=["auto", "synth", "photo"])
    data: DataSection = field(default_factory=DataSection, metadata={"help": "dataset"})
    generator: GeneratorSection = field(default_factory=GeneratorSection, metadata={"help": "PoNA generator"})
    patn: GeneratorSection = field(default_factory=patn_section, metadata={
        "help": "PATN generator of the patn method (its train.generator.arch must be patn)"})
    augment: AugmentSection = field(default_factory=AugmentSection, metadata={"help": "augmentation"})
    auxiliary: AuxiliarySection = field(default_factory=AuxiliarySection,
                                        metadata={"help": "identities outside the experiment, for pretraining"})
    pretrain: PretrainSection = field(default_factory=PretrainSection,
                                      metadata={"help": "re-ID pretraining on the auxiliary identities"})
    dask: DaskSection = field(default_factory=DaskSection, metadata={"help": "where sharded work runs"})
    reid: ReidTrainConfig = param(default_factory=ReidTrainConfig, help="re-ID training (out and data.root are set by "
                                  "the pipeline)", presets=REID_PRESETS, not_from_preset=("out", "data.root"))

    def __post_init__(self) -> None:
        check_portion(self.portion)
        check_scheduler(self.dask.scheduler)
        if self.reid.loss.generated_label != "hard":
            raise ValueError("in the pipeline, synthesised images' labels are augment.label (and augment.label_epsilon); "
                             "leave reid.loss.generated_label at hard")
        if self.reid.budget_steps:
            raise ValueError("in the pipeline, reid.budget=iterations counts the full set's optimiser steps itself; "
                             "leave reid.budget_steps at 0")
        known = method_table.TABLE
        if not self.methods or any(m not in known for m in self.methods):
            raise ValueError(f"methods must be a non-empty list of {', '.join(known)}, got {self.methods}")
        for g in method_table.GENERATORS.values():
            if getattr(self, g.section).train.generator.arch != g.name:
                raise ValueError(f"{g.section}.train.generator.arch must be {g.name}: the {g.section} section trains "
                                 f"the {g.name} method's generator")

    @property
    def run_name(self) -> str:
        """``p0.2-seed0``; ``-iterations`` added under that re-ID step budget, so both budgets' runs coexist."""
        return f"p{self.portion:g}-seed{self.seed}" + ("" if self.reid.budget == "epochs" else f"-{self.reid.budget}")


def generator_seed(cfg: PipelineConfig) -> int:
    """The seed of the generator in ``cfg``'s generator slot (``generator.seed``, or the run's)."""
    return cfg.generator.seed if cfg.generator.seed >= 0 else cfg.seed


def generator_view(cfg: PipelineConfig, generator: str) -> PipelineConfig:
    """``cfg`` with ``generator``'s section (pona: ``generator``, patn: ``patn``) in the ``generator``
    slot: the generator stages build their settings from that slot, so one stage module serves both."""
    section = method_table.GENERATORS[generator].section
    if section == "generator":
        return cfg
    view = copy.copy(cfg)  # not dataclasses.replace: the view breaks the generator-section arch check on purpose
    view.generator = getattr(cfg, section)
    return view


def load_pipeline_config(*overrides: str) -> PipelineConfig:
    """The config ``python -m pipelines.run`` would build (preset ``default`` unless one is named)."""
    return resolve(PipelineConfig, overrides, PRESETS_DIR, default_preset="default")


def effective_precision(cfg: PipelineConfig) -> str:
    """``precision`` resolved on this machine (``fp32`` or ``bf16``): what the stages' fingerprints and
    results record, so an ``auto`` run on a CPU without bf16 never reuses a bf16 stage, nor the reverse."""
    return precision_name(resolve_precision(cfg.precision, resolve_device(cfg.device)))
