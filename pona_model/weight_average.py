"""The plain average of a generator's weights over the last snapshots of its training.

A GAN generator's weights wander from one evaluation to the next; the average of the recent iterates
scores better than any one of them (measured in docs/generator-recipe.md, "Averaging the last
snapshots": SSIM 0.431 for the average of 5 snapshots against 0.381-0.422 for the snapshots alone).
The average is taken over the snapshots ``bench/generator_learning_curve.py --snapshots`` keeps, and
a release can be made from it (``python -m pona_model.release --average-snapshots ...``). Batch-norm
running statistics are averaged like the weights; integer buffers (batch counters) come from the last
snapshot. The paper releases its last iterate; averaging is this project's option, off by default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from runtime.errors import CheckpointError

SNAPSHOT_NAME = re.compile(r"generator_(\d+)\.pt$")


def snapshot_iteration(path: str | os.PathLike) -> int:
    """The iteration in a snapshot's name (``generator_0008000.pt`` -> 8000)."""
    match = SNAPSHOT_NAME.search(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a generator snapshot (generator_<iteration>.pt, written by "
                         "bench/generator_learning_curve.py --snapshots)")
    return int(match.group(1))


def check_alike(states: Sequence[Mapping[str, torch.Tensor]], names: Sequence[str]) -> None:
    """Refuse, in one line naming the file, weights whose tensors differ in names or shapes from the
    last one's: only snapshots of one training can be averaged."""
    last = states[-1]
    for name, state in zip(names, states):
        if set(state) != set(last):
            extra, missing = sorted(set(state) - set(last)), sorted(set(last) - set(state))
            raise CheckpointError(f"{name}: its tensors differ from {names[-1]}'s (extra {extra[:3]}, missing "
                                  f"{missing[:3]}); average snapshots of one training only")
        for key, value in state.items():
            if value.shape != last[key].shape:
                raise CheckpointError(f"{name}: {key!r} has shape {tuple(value.shape)}, {names[-1]} "
                                      f"{tuple(last[key].shape)}; average snapshots of one training only")


def average_states(states: Sequence[Mapping[str, torch.Tensor]], names: Sequence[str] | None = None
                   ) -> dict[str, torch.Tensor]:
    """The mean, in fp32, of each floating tensor over ``states`` (same keys and shapes, in training
    order); integer tensors from the last state. ``names`` label the states in errors."""
    if not states:
        raise ValueError("no weights to average")
    check_alike(states, list(names) if names is not None else [f"state {i}" for i in range(len(states))])
    out: dict[str, torch.Tensor] = {}
    for key, value in states[-1].items():
        if value.is_floating_point():
            out[key] = torch.stack([s[key].float() for s in states]).mean(0)
        else:
            out[key] = value.clone()
    return out


def load_snapshots(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[dict[str, torch.Tensor]]]:
    """Snapshot files in iteration order and their weights (``weights_only``); a missing file, a
    repeated iteration or a file that is not a state dict is refused in one line."""
    files = sorted((Path(p) for p in paths), key=snapshot_iteration)
    iterations = [snapshot_iteration(p) for p in files]
    if len(set(iterations)) != len(iterations):
        raise ValueError(f"snapshots repeat an iteration: {iterations}")
    states = []
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"snapshot {path} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{path} is not a generator snapshot (a state dict of tensors)")
        states.append(state)
    return files, states
