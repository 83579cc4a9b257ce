"""Pretrained weight files, which are never downloaded: a file named in the config, else the file
torchvision (or a metric's reference package) keeps in ``$TORCH_HOME/hub/checkpoints``.

One policy for the perceptual loss, the re-ID backbone and the metric networks: a configured file
must exist (a wrong path is a configuration error, never a reason to skip or fall back), while an
unconfigured one is looked up in the hub cache under its usual names; when it is not there the caller
decides (the loss and re-ID stop with what to put where, a metric is reported as skipped).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import unreadable_reason
from runtime.errors import MissingWeightsError
from runtime.releases import TRUNK_RELEASE_FORMAT

__all__ = ["absent_reason", "find_weights", "hub_checkpoints_dir", "hub_paths",
           "load_state_dict", "read_weights"]


def hub_checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints``, where torchvision keeps downloaded weight files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hub_paths(cache_names: Sequence[str]) -> list[Path]:
    """Where each of ``cache_names`` would be in the torch hub cache."""
    return [hub_checkpoints_dir() / name for name in cache_names]


def find_weights(configured: str | os.PathLike | None, cache_names: Sequence[str], key: str, *,
                 what: str = "", hint: str = "") -> Path | None:
    """The configured file when given (it must exist: else MissingWeightsError naming ``key``, then
    ``hint``), else the first of ``cache_names`` present in the torch hub cache, else None."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            label = f"{what} weights file" if what else "weights file"
            raise MissingWeightsError(f"{label} {path} ({key}) does not exist" + (f". {hint}" if hint else ""))
        return path
    return next((path for path in hub_paths(cache_names) if path.is_file()), None)


def absent_reason(what: str, cache_names: Sequence[str], key: str) -> str:
    """The skip reason for weights found neither in the config nor in the cache: what to put where."""
    names = " or ".join(cache_names)
    return (f"{what} weights are not available (they cannot be downloaded on this machine): put {names} in "
            f"{hub_checkpoints_dir()} or set {key}=PATH")


def read_weights(path: str | os.PathLike, what: str = "torch state dict") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU with a nested {"state_dict": ...} unwrapped; an
    unreadable file is a MissingWeightsError saying which file and why, not a pickle traceback."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: say which, not a pickle traceback
        raise MissingWeightsError(f"{path} cannot be read as a {what} ({unreadable_reason(exc)})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A plain tensor state dict from ``path`` (``weights_only=True``); nested {"state_dict": ...} unwrapped."""
    state = read_weights(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MissingWeightsError(f"{path} is not a state dict of tensors")
    return state


def released_trunk_state(state: Any) -> dict[str, torch.Tensor] | None:
    """The ResNet state dict inside a loaded ``reid-trunk-release`` file (fp16 as released), None when
    ``state`` is something else (a plain state dict, a training checkpoint)."""
    if isinstance(state, dict) and state.get("format") == TRUNK_RELEASE_FORMAT and isinstance(state.get("trunk"), dict):
        return state["trunk"]
    return None
