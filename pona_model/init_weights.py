"""Where a fine-tuning run's networks start (``init=``): the generator of a finished training, an
imported checkpoint or a release, read once and checked against the run's own config.

Fine-tuning differs from resuming: the run has its own schedule and losses (a new ``out`` folder, its
iteration counted from 0), fresh optimisers and history pools, and only the weights come from the
start. A release is verified against its sha256 before it is read (``released:NAME``); the start's
file and hash are written into every checkpoint of the run, so a release made from it names what it
was fine-tuned from (docs/generator-recipe.md, "Fine-tuning from a finished generator").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from pona_model.checkpoint_tags import GENERATOR_FORMAT, GENERATOR_RELEASE_FORMAT
from pona_model.generator import GeneratorConfig
from pona_model.inference import fp32_weights
from pona_model.release_spec import is_release, resolve_release
from runtime.checkpoint import file_sha256, load_checkpoint
from runtime.config import build, to_dict
from runtime.errors import CheckpointError, ConfigError

DISCRIMINATORS = ("d_pose", "d_appearance")


@dataclass(frozen=True)
class StartWeights:
    """The networks a run starts from, and what the run records of them."""

    generator: dict[str, Tensor]
    discriminators: dict[str, dict[str, Tensor]]  # only those the start holds for the same D config
    record: dict[str, Any]  # spec (the init= value), sha256, iteration, averaged_iterations


def locate_start(spec: str | os.PathLike, arch: str) -> tuple[Path, str]:
    """The start's file and sha256 (a release verified first); a one-line error if it cannot be used."""
    if is_release(spec):
        release = resolve_release(spec, arch)
        assert release is not None
        return release.path, release.sha256
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(f"init = {spec} is not a file: give a generator checkpoint (a training's checkpoint.pt, an "
                          "imported one) or released:<name>")
    return path, file_sha256(path)


def read_start(spec: str | os.PathLike, generator: GeneratorConfig, discriminator: Any, arch: str) -> StartWeights:
    """The start's weights as fp32 tensors, after checking that they were trained with this run's
    generator config (and, for the discriminators, its discriminator config: otherwise they start fresh)."""
    path, sha256 = locate_start(spec, arch)
    state = load_checkpoint(path, (GENERATOR_FORMAT, GENERATOR_RELEASE_FORMAT), map_location="cpu")
    stored = state.get("config", {})
    try:
        theirs = build(GeneratorConfig, stored["generator"], prefix="generator.")
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"init = {spec}: its generator config cannot be read ({exc})") from exc
    if theirs != generator:
        mine, other = to_dict(generator), to_dict(theirs)
        diff = sorted(k for k in mine if mine[k] != other.get(k))
        raise CheckpointError(f"init = {spec} holds a generator with another config (differs in: "
                              f"{', '.join('generator.' + k for k in diff)}); set those keys as it was trained")
    same_d = stored.get("discriminator") == to_dict(discriminator)
    discriminators = {k: fp32_weights(state[k]) for k in DISCRIMINATORS if same_d and k in state}
    record = {"spec": str(spec), "sha256": sha256, "iteration": int(state.get("iteration", 0)),
              "averaged_iterations": [int(i) for i in state.get("averaged_iterations", ())]}
    return StartWeights(fp32_weights(state["generator"]), discriminators, record)
