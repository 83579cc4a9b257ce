"""Stage 3: the PoNA generator (PATN's for the patn method, through ``pipelines.config.generator_view``).
Trained on pairs of the kept images only (leak-free, the default) or of the whole training set
(``generator.train_on=full``, as the paper), or taken from ``generator.checkpoint``, which is checked
against the configured architecture and image size first."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import methods
from pipelines.config import PipelineConfig, effective_precision, generator_seed, generator_view
from pipelines.stage_cache import file_digest
from pipelines.stages import Instance, same
from pona_model.annotations import build_pairs, read_annotations, write_pairs
from pona_model.inference import load_generator
from pona_model.trainer import Trainer
from runtime.checkpoint import file_sha256
from runtime.config import content

# Set by the stage from the upstream stages' results (the pairs and image folders), not read from the config.
FROM_DEPENDENCIES = ("data",)


def instances(cfg: PipelineConfig) -> list[Instance]:
    """One per generator the run uses (PoNA's; PATN's for the patn method), each seeing its own section."""
    out = []
    for generator in methods.generators(cfg):
        view = generator_view(cfg, generator)
        out.append(Instance(methods.generator_stage(generator), same(*dependencies(view)), view))
    return out


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    if cfg.generator.checkpoint:
        return {"checkpoint": str(Path(cfg.generator.checkpoint).resolve()),
                "sha256": file_digest(cfg.generator.checkpoint, Path(cfg.out) / "cache")}
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
    """A given checkpoint must load and match the configured generator image size."""
    if not cfg.generator.checkpoint:
        return
    model = load_generator(cfg.generator.checkpoint, "cpu")
    arch = cfg.generator.train.generator.arch
    section = "patn" if arch == "patn" else "generator"  # the view of pipelines.config.generator_view
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


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    if cfg.generator.checkpoint:
        model = load_generator(cfg.generator.checkpoint, "cpu")
        return {"checkpoint": str(Path(model.checkpoint).absolute()), "sha256": model.sha256, "trained": False}
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
            "train_on": cfg.generator.train_on, "train_root": str(source["root"]),
            "n_pairs": len(pairs), "iterations": summary["iteration"], "last_losses": summary["losses"],
            "samples": str(folder / "train" / "samples") if (folder / "train" / "samples").is_dir() else ""}
