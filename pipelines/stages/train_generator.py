"""Stage 3: the PoNA generator (PATN's for the patn method, through ``pipelines.config.generator_view``).
Trained on pairs of the kept images only (leak-free, the default) or of the whole training set
(``generator.train_on=full``, as the paper), or taken from ``generator.checkpoint``: a release
(``released``, ``released:<name>``: verified by sha256, and fingerprinted by it alone, so a moved
repository reuses the cache and an altered file never does) or a path. Either is checked against the
configured architecture and image size before any stage runs. The result says which generator was
used: ``source`` (``released:<name>``, ``trained`` or ``path``), ``sha256`` and ``iterations``."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import methods
from pipelines.config import PipelineConfig, effective_precision, generator_seed, generator_view
from pipelines.stage_cache import file_digest
from pipelines.stages import Instance, same
from pona_model.inference import load_generator
from pona_model.release_spec import release_name, resolve_release
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


def instances(cfg: PipelineConfig) -> list[Instance]:
    """One per generator the run uses (PoNA's; PATN's for the patn method), each seeing its own section."""
    out = []
    for generator in methods.generators(cfg):
        view = generator_view(cfg, generator)
        out.append(Instance(methods.generator_stage(generator), same(*dependencies(view)), view))
    return out


def _arch(cfg: PipelineConfig) -> str:
    return cfg.generator.train.generator.arch


def _key(cfg: PipelineConfig) -> str:
    """The config key of the generator in this view (pipelines.config.generator_view)."""
    return "patn.checkpoint" if _arch(cfg) == "patn" else "generator.checkpoint"


def _released(cfg: PipelineConfig) -> str | None:
    """The release the config names, or None (train here, or a path)."""
    return release_name(cfg.generator.checkpoint, _arch(cfg)) if cfg.generator.checkpoint else None


def release_digest(name: str) -> str | None:
    """The sha256 of the release's weights file as it is on disk now (None if absent): the stage's
    fingerprint, hashed in full each time, so an altered file can never reuse the right one's cache.
    Whether it matches release.json is checked (in one line) by ``check`` and ``run``."""
    try:
        path = release_dir(name) / read_manifest(name)["file"]
    except ReleaseError:
        return None
    return file_sha256(path) if path.is_file() else None


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    name = _released(cfg)
    if name is not None:  # no name, no path: the same weights are the same stage wherever they live
        return {"source": "released", "sha256": release_digest(name)}
    if cfg.generator.checkpoint:  # by content alone, as a release: a moved file is the same stage
        return {"source": "path", "sha256": file_digest(cfg.generator.checkpoint, Path(cfg.out) / "cache")}
    train = content(cfg.generator.train, drop=FROM_DEPENDENCIES)
    train["seed"] = generator_seed(cfg)
    train["precision"] = effective_precision(cfg)
    return {"train_on": cfg.generator.train_on, "train": train}


def dependencies(cfg: PipelineConfig) -> tuple[str, ...]:
    """The stages whose results this stage reads: the kept list (train_on=kept) or the auxiliary
    identities (train_on=auxiliary) besides the dataset."""
    if cfg.generator.checkpoint:
        return ("prepare_data",)
    extra = {"kept": ("subsample",), "auxiliary": ("prepare_auxiliary",), "full": ()}[cfg.generator.train_on]
    return ("prepare_data", *extra)


def check(cfg: PipelineConfig) -> None:
    """A given checkpoint must load (a release: verify against its sha256) and match the configured
    generator architecture and image size."""
    if not cfg.generator.checkpoint:
        return
    arch = cfg.generator.train.generator.arch
    section = "patn" if arch == "patn" else "generator"  # the view of pipelines.config.generator_view
    try:
        model = load_generator(cfg.generator.checkpoint, "cpu", arch=arch)
    except ReleaseError as exc:
        raise ReleaseError(f"{_key(cfg)}={cfg.generator.checkpoint}: {exc}; or train the generator here "
                           f"instead: {_key(cfg)}=train") from exc
    if model.config.arch != arch:
        raise ValueError(f"{section}.checkpoint {cfg.generator.checkpoint} holds a {model.config.arch} generator, "
                         f"the {'patn' if arch == 'patn' else 'pona'} method needs a {arch} one")
    want = tuple(cfg.generator.train.generator.image_size)
    if model.image_size != want:
        raise ValueError(
            f"{section}.checkpoint {cfg.generator.checkpoint} was trained at {model.image_size[0]} x "
            f"{model.image_size[1]}, the config says {want[0]} x {want[1]}: set "
            f"{section}.train.generator.image_size=[{model.image_size[0]},{model.image_size[1]}] or use a "
            "checkpoint of the configured size")


def use_release(folder: Path, cfg: PipelineConfig) -> dict[str, Any]:
    """Verify the release and copy its weights into the stage folder: later stages (and dask workers)
    read the copy, which moves with the cache, whatever becomes of the repository's releases/."""
    release = resolve_release(cfg.generator.checkpoint, _arch(cfg))
    assert release is not None
    local = folder / RELEASE_COPY
    with atomic_path(local) as tmp:
        shutil.copyfile(release.path, tmp)
        if file_sha256(tmp) != release.sha256:
            raise ReleaseError(f"{release.path} changed while it was copied to {local}; rerun")
    model = load_generator(local, "cpu")
    return {"checkpoint": str(local), "sha256": release.sha256, "trained": False,
            "source": f"released:{release.name}", "iterations": model.iteration}


def use_path(folder: Path, cfg: PipelineConfig) -> dict[str, Any]:
    """Copy a given checkpoint into the stage folder, as a release is: later stages read the copy, which
    moves with the run folder, and a later change to the user's file cannot reach them (the stage's
    fingerprint is the file's SHA-256, so a changed file is another stage)."""
    given = Path(cfg.generator.checkpoint).absolute()
    local = folder / GIVEN_COPY
    want = file_sha256(given)
    with atomic_path(local) as tmp:
        shutil.copyfile(given, tmp)
        if file_sha256(tmp) != want:
            raise CheckpointError(f"{given} changed while it was copied to {local}; rerun")
    model = load_generator(local, "cpu")
    return {"checkpoint": str(local), "sha256": model.sha256, "trained": False, "source": "path",
            "given": str(given), "iterations": model.iteration}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    if _released(cfg) is not None:
        return use_release(folder, cfg)
    if cfg.generator.checkpoint:
        return use_path(folder, cfg)
    data = deps["prepare_data"]
    source = deps["prepare_auxiliary"] if cfg.generator.train_on == "auxiliary" else data
    keypoints = read_annotations(source["annotations"])
    if cfg.generator.train_on == "kept":
        names = set(pd.read_csv(deps["subsample"]["kept"])["name"])
        keypoints = {n: kp for n, kp in keypoints.items() if n in names}
    pairs = build_pairs(keypoints, seed=generator_seed(cfg))
    if pairs.empty:
        raise ValueError("no training pairs: no identity has two kept images with shoulders and hips; raise the "
                         "portion, or train the generator on the full set (generator.train_on=full)")
    write_pairs(folder / "pairs-train.csv", pairs)
    root = Path(data["root"])
    train = cfg.generator.train
    test_ok = bool(data.get("test_pairs")) and Path(data["test_pairs"]).exists()
    # Absolute paths throughout: training images may live in the auxiliary folder, samples in the dataset's.
    train = dataclasses.replace(
        train, out=str(folder / "train"), device=cfg.device, seed=generator_seed(cfg), precision=cfg.precision,
        data=dataclasses.replace(
            train.data, root="", images=str(Path(source["root"]) / "bounding_box_train"),
            annotations=str(source["annotations"]), pairs=str(folder / "pairs-train.csv"),
            sample_images=str(root / ("bounding_box_test" if test_ok else "bounding_box_train")),
            sample_annotations=str(data["test_annotations"] if test_ok else data["annotations"]),
            sample_pairs=str(data["test_pairs"] if test_ok else folder / "pairs-train.csv")))
    summary = Trainer(train).fit()
    return {"checkpoint": summary["checkpoint"], "sha256": file_sha256(summary["checkpoint"]), "trained": True,
            "source": "trained",
            "train_on": cfg.generator.train_on, "train_root": str(source["root"]),
            "n_pairs": len(pairs), "iterations": summary["iteration"], "last_losses": summary["losses"],
            "samples": str(folder / "train" / "samples") if (folder / "train" / "samples").is_dir() else ""}
