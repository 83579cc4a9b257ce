"""Stage 3: the PoNA generator (PATN's for the patn method, through ``pipelines.config.generator_view``).
Trained on pairs of the kept images only (leak-free, the default) or of the whole training set
(``generator.train_on=full``, as the paper), or taken from ``generator.checkpoint``: a release
(``released``, ``released:<name>``: verified by sha256, and fingerprinted by it alone, so a moved
repository reuses the cache and an altered file never does) or a path. Either is checked against the
configured architecture and image size before any stage runs. The result says which generator was
used: ``source`` (``released:<name>``, ``trained`` or ``path``), ``sha256``, ``iterations`` and ``weights``
(which snapshots a release averaged, where it did), with the
same fields whichever it was (those of a training empty where it was loaded)."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import methods, plan
from pipelines.config import PipelineConfig, effective_precision, generator_seed, generator_view
from pipelines.stage_cache import file_digest
from pipelines.stage_names import PREPARE_AUXILIARY, PREPARE_DATA, SUBSAMPLE, StageName, trained_generator
from pipelines.stages import Instance, StageOutput, StageSettings, run_only, same
from pona_model.inference import load_generator, weights_label
from pona_model.release_spec import release_name, resolve_release
from pona_model.train_config import TrainConfig
from pona_model.trainer import Trainer
from poseformats.annotations import build_pairs, read_annotations, write_pairs
from runtime.atomic import atomic_path
from runtime.checkpoint import file_sha256
from runtime.config import content
from runtime.errors import CheckpointError
from runtime.releases import ReleaseError, read_manifest, release_dir

RELEASE_COPY = "generator.pt"  # the release's weights, copied into the stage folder (portable with the cache)
GIVEN_COPY = "given-checkpoint.pt"  # generator.checkpoint=PATH, copied in as well

# Set by the stage from the upstream stages' results (the pairs and image folders), not read from the config.
FROM_DEPENDENCIES = ("data",)


@dataclass(frozen=True, kw_only=True)
class Released(StageSettings):
    """A release, fingerprinted by its weights' SHA-256 alone: the same weights are the same stage
    wherever the repository lives. ``checkpoint`` and ``arch`` only say where to find them."""

    source: str = "released"
    sha256: str | None
    checkpoint: str = run_only()
    arch: str = run_only()


@dataclass(frozen=True, kw_only=True)
class Given(StageSettings):
    """``generator.checkpoint=PATH``, fingerprinted by content as a release is: a moved file is the same stage."""

    source: str = "path"
    sha256: str | None
    checkpoint: str = run_only()


@dataclass(frozen=True, kw_only=True)
class Trained(StageSettings):
    """Training here: the section's ``train_on`` and its training config with the run's seed, device and
    resolved precision (its data paths are set from the upstream stages, so they are not fingerprinted)."""

    train_on: str
    train: TrainConfig

    def fingerprint(self) -> dict[str, Any]:
        return {"train_on": self.train_on, "train": content(self.train, drop=FROM_DEPENDENCIES)}


Settings = Released | Given | Trained


@dataclass(frozen=True, kw_only=True)
class Result(StageOutput):
    """Which generator the run uses; ``train_on`` to ``samples`` describe a training (empty when loaded),
    ``given``: the path a given checkpoint was copied from."""

    checkpoint: str
    sha256: str
    trained: bool
    source: str = ""
    iterations: int | None = None
    weights: str = ""  # "iteration N", or the snapshots a release averaged (LoadedGenerator.weights)
    train_on: str = ""
    train_root: str = ""
    n_pairs: int = 0
    last_losses: dict[str, Any] = field(default_factory=dict)
    samples: str = ""
    given: str = ""

    def __post_init__(self) -> None:
        if not self.source:  # recorded before the result named its source
            object.__setattr__(self, "source", "trained" if self.trained else "path")


def _arch(cfg: PipelineConfig) -> str:
    return cfg.generator.train.generator.arch


def _section(cfg: PipelineConfig) -> str:
    """The config section of the generator in this view (pipelines.config.generator_view)."""
    return methods.GENERATORS[_arch(cfg)].section


def _key(cfg: PipelineConfig) -> str:
    return f"{_section(cfg)}.checkpoint"


def release_digest(name: str) -> str | None:
    """The sha256 of the release's weights file as it is on disk now (None if absent): the stage's
    fingerprint, hashed in full each time, so an altered file can never reuse the right one's cache.
    Whether it matches release.json is checked (in one line) by ``check`` and ``run``."""
    try:
        path = release_dir(name) / read_manifest(name)["file"]
    except ReleaseError:
        return None
    return file_sha256(path) if path.is_file() else None


def settings(cfg: PipelineConfig) -> Settings:
    """``cfg``'s generator slot (a ``generator_view`` for PATN's stages)."""
    given = cfg.generator.checkpoint
    name = release_name(given, _arch(cfg)) if given else None
    if name is not None:
        return Released(sha256=release_digest(name), checkpoint=given, arch=_arch(cfg))
    if given:
        return Given(sha256=file_digest(given, Path(cfg.out) / "cache"), checkpoint=given)
    train = dataclasses.replace(cfg.generator.train, device=cfg.device, seed=generator_seed(cfg),
                                precision=effective_precision(cfg))
    return Trained(train_on=cfg.generator.train_on, train=train)


def dependencies(cfg: PipelineConfig) -> tuple[StageName, ...]:
    """The stages whose results this stage reads: the kept list (train_on=kept) or the auxiliary
    identities (train_on=auxiliary) besides the dataset."""
    if cfg.generator.checkpoint:
        return (PREPARE_DATA,)
    extra = {"kept": (SUBSAMPLE,), "auxiliary": (PREPARE_AUXILIARY,), "full": ()}[cfg.generator.train_on]
    return (PREPARE_DATA, *extra)


def instances(cfg: PipelineConfig) -> list[Instance]:
    """One per generator the run uses (PoNA's; PATN's for the patn method), each from its own section."""
    out = []
    for generator in plan.generators(cfg):
        view = generator_view(cfg, generator)
        out.append(Instance(trained_generator(generator), settings(view), same(*dependencies(view))))
    return out


def check(cfg: PipelineConfig) -> None:
    """A given checkpoint of a generator the run uses must load (a release: verify against its sha256)
    and match the configured generator architecture and image size."""
    for generator in plan.generators(cfg):
        _check_given(generator_view(cfg, generator))


def _check_given(cfg: PipelineConfig) -> None:
    if not cfg.generator.checkpoint:
        return
    arch, section = _arch(cfg), _section(cfg)
    try:
        model = load_generator(cfg.generator.checkpoint, "cpu", arch=arch)
    except ReleaseError as exc:
        raise ReleaseError(f"{_key(cfg)}={cfg.generator.checkpoint}: {exc}; or train the generator here "
                           f"instead: {_key(cfg)}=train") from exc
    if model.config.arch != arch:
        raise ValueError(f"{section}.checkpoint {cfg.generator.checkpoint} holds a {model.config.arch} generator, "
                         f"the {arch} method needs a {arch} one")
    want = tuple(cfg.generator.train.generator.image_size)
    if model.image_size != want:
        raise ValueError(
            f"{section}.checkpoint {cfg.generator.checkpoint} was trained at {model.image_size[0]} x "
            f"{model.image_size[1]}, the config says {want[0]} x {want[1]}: set "
            f"{section}.train.generator.image_size=[{model.image_size[0]},{model.image_size[1]}] or use a "
            "checkpoint of the configured size")


def use_release(folder: Path, settings: Released) -> Result:
    """Verify the release and copy its weights into the stage folder: later stages (and dask workers)
    read the copy, which moves with the cache, whatever becomes of the repository's releases/."""
    release = resolve_release(settings.checkpoint, settings.arch)
    assert release is not None
    local = folder / RELEASE_COPY
    with atomic_path(local) as tmp:
        shutil.copyfile(release.path, tmp)
        if file_sha256(tmp) != release.sha256:
            raise ReleaseError(f"{release.path} changed while it was copied to {local}; rerun")
    model = load_generator(local, "cpu")
    return Result(checkpoint=str(local), sha256=release.sha256, trained=False, source=f"released:{release.name}",
                  iterations=model.iteration, weights=model.weights)


def use_path(folder: Path, settings: Given) -> Result:
    """Copy a given checkpoint into the stage folder, as a release is: later stages read the copy, which
    moves with the run folder, and a later change to the user's file cannot reach them (the stage's
    fingerprint is the file's SHA-256, so a changed file is another stage)."""
    given = Path(settings.checkpoint).absolute()
    local = folder / GIVEN_COPY
    want = file_sha256(given)
    with atomic_path(local) as tmp:
        shutil.copyfile(given, tmp)
        if file_sha256(tmp) != want:
            raise CheckpointError(f"{given} changed while it was copied to {local}; rerun")
    model = load_generator(local, "cpu")
    return Result(checkpoint=str(local), sha256=model.sha256, trained=False, source="path", given=str(given),
                  iterations=model.iteration, weights=model.weights)


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    if isinstance(settings, Released):
        return use_release(folder, settings)
    if isinstance(settings, Given):
        return use_path(folder, settings)
    data = deps["prepare_data"]
    source = deps["prepare_auxiliary"] if settings.train_on == "auxiliary" else data
    keypoints = read_annotations(source.annotations)
    if settings.train_on == "kept":
        names = set(pd.read_csv(deps["subsample"].kept)["name"])
        keypoints = {n: kp for n, kp in keypoints.items() if n in names}
    train = settings.train
    pairs = build_pairs(keypoints, seed=train.seed)
    if pairs.empty:
        raise ValueError("no training pairs: no identity has two kept images with shoulders and hips; raise the "
                         "portion, or train the generator on the full set (generator.train_on=full)")
    write_pairs(folder / "pairs-train.csv", pairs)
    root = Path(data.root)
    test_ok = bool(data.test_pairs) and Path(data.test_pairs).exists()
    # Absolute paths throughout: training images may live in the auxiliary folder, samples in the dataset's.
    train = dataclasses.replace(
        train, out=str(folder / "train"),
        data=dataclasses.replace(
            train.data, root="", images=str(Path(source.root) / "bounding_box_train"),
            annotations=str(source.annotations), pairs=str(folder / "pairs-train.csv"),
            sample_images=str(root / ("bounding_box_test" if test_ok else "bounding_box_train")),
            sample_annotations=str(data.test_annotations if test_ok else data.annotations),
            sample_pairs=str(data.test_pairs if test_ok else folder / "pairs-train.csv")))
    summary = Trainer(train).fit()
    samples = folder / "train" / "samples"
    return Result(checkpoint=summary["checkpoint"], sha256=file_sha256(summary["checkpoint"]), trained=True,
                  source="trained", iterations=summary["iteration"],
                  weights=weights_label(summary["iteration"]), train_on=settings.train_on,
                  train_root=str(source.root), n_pairs=len(pairs), last_losses=summary["losses"],
                  samples=str(samples) if samples.is_dir() else "")
