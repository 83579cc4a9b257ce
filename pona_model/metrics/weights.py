"""Finding pretrained weights that cannot be downloaded: a configured file, else the torch hub cache.

The same policy as the perceptual loss (``pona_model.losses``): a file named in the config must exist
(a wrong path is a configuration error, not a reason to skip), while an unconfigured file is looked up
under the names torchvision (or the metric's reference package) gives it in
``$TORCH_HOME/hub/checkpoints``; when it is not there the caller reports the metric as skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from pona_model.checkpoint import unreadable_reason
from pona_model.losses import MissingWeightsError


def hub_checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints``, where torchvision keeps downloaded weight files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(configured: str | os.PathLike | None, cache_names: Sequence[str], key: str) -> Path | None:
    """The configured file when given (it must exist: else MissingWeightsError naming ``key``), else
    the first of ``cache_names`` present in the torch hub cache, else None."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise MissingWeightsError(f"weights file {path} ({key}) does not exist")
        return path
    for name in cache_names:
        cached = hub_checkpoints_dir() / name
        if cached.is_file():
            return cached
    return None


def absent_reason(what: str, cache_names: Sequence[str], key: str) -> str:
    """The skip reason for weights found neither in the config nor in the cache: what to put where."""
    names = " or ".join(cache_names)
    return (f"{what} weights are not available (they cannot be downloaded on this machine): put {names} in "
            f"{hub_checkpoints_dir()} or set {key}=PATH")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A plain tensor state dict from ``path`` (``weights_only=True``); nested {"state_dict": ...} unwrapped."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: say which, not a pickle traceback
        raise MissingWeightsError(f"{path} cannot be read as a torch state dict ({unreadable_reason(exc)})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MissingWeightsError(f"{path} is not a state dict of tensors")
    return state


class MetricNetwork(nn.Module):
    """A frozen network in evaluation mode with the ``provenance`` a result records beside its scores
    (files and SHA-256, or a test stand-in's label): the metric networks' common base."""

    def __init__(self, net: nn.Module, provenance: dict[str, object]) -> None:
        super().__init__()
        self.net = net
        self.provenance = dict(provenance)
        self.requires_grad_(False)
        self.eval()
