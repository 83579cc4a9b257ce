"""LPIPS (Zhang et al. 2018, version 0.1, AlexNet) through the ``lpips`` package, from local weight files.

The ``lpips`` package is the reference implementation: torchvision's AlexNet ``features`` tapped after
its five ReLUs, inputs in [-1, 1] shifted and scaled per channel, each tap unit-normalised over its
channels, squared differences weighted by the learned "lin" heads, averaged over space and summed over
the taps. Images are scored at the compared size, not resized.

Nothing is downloaded: the package is built with an untrained trunk and no heads, and both are filled
from local files: AlexNet from ``metrics.alexnet_weights`` or the torch hub cache
(``alexnet-owt-7be5be79.pth``), the heads from ``metrics.lpips_weights``, the hub cache
(``lpips_alex_v0.1.pth`` or ``alex.pth``) or the ``weights/v0.1/alex.pth`` the lpips wheel ships. Both are
read with ``weights_only=True`` and their shapes checked, so a wrong file fails naming it. Missing
either, LPIPS is reported as skipped.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from pathlib import Path

import lpips as lpips_package
import numpy as np
import torch

from pona_model.metrics.weights import MetricNetwork
from runtime.checkpoint import file_sha256
from runtime.errors import MissingWeightsError
from runtime.weights import absent_reason, find_weights, hub_checkpoints_dir, load_state_dict

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_HEAD_FILES = ("lpips_alex_v0.1.pth", "alex.pth")
ALEXNET_KEY = "metrics.alexnet_weights"
LPIPS_KEY = "metrics.lpips_weights"
CHANNELS = (64, 192, 384, 256, 256)  # the five AlexNet taps
SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))  # the lpips package's slices of alexnet().features
MIN_SIZE = 31  # the smallest side AlexNet's strides and pools leave at least one pixel of
_HEAD_KEY = re.compile(r"^lin(\d)\.(?:model\.\d+\.)?weight$")


class LPIPS(MetricNetwork):
    """The lpips package's LPIPS v0.1 (AlexNet) in ``net``; ``distance`` takes uint8 image batches."""

    @torch.inference_mode()
    def distance(self, generated: np.ndarray, target: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(B,) float64 LPIPS between uint8 (B, H, W, 3) batches."""
        if len(generated) and min(np.asarray(generated).shape[1:3]) < MIN_SIZE:
            raise ValueError(f"LPIPS (AlexNet) needs images of at least {MIN_SIZE} x {MIN_SIZE} pixels, got "
                             f"{np.asarray(generated).shape[1:3]}")
        device = self.net.scaling_layer.shift.device
        out = []
        for start in range(0, len(generated), batch_size):
            a, b = (torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device)
                    .permute(0, 3, 1, 2).float().div(127.5).sub(1.0) for x in (generated, target))
            out.append(self.net(a, b).flatten().double().cpu())
        return torch.cat(out).numpy() if out else np.zeros(0)


def lpips_from_states(alexnet_state: dict[str, torch.Tensor], head_state: dict[str, torch.Tensor],
                      provenance: dict[str, object]) -> LPIPS:
    """LPIPS from a torchvision AlexNet state dict (``features.*`` keys) and a heads state dict."""
    heads: dict[int, torch.Tensor] = {}
    for key, value in head_state.items():
        m = _HEAD_KEY.match(key)
        if m:
            heads[int(m.group(1))] = value
    if sorted(heads) != list(range(len(CHANNELS))) or any(heads[i].numel() != c for i, c in enumerate(CHANNELS)):
        raise MissingWeightsError(f"{provenance.get('lpips_file')}: not LPIPS AlexNet heads (expected lin0..lin4 "
                                  f"weights with {CHANNELS} channels, found {sorted(head_state)[:8]})")
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated pretrained=False
        warnings.simplefilter("ignore")
        net = lpips_package.LPIPS(pretrained=False, net="alex", version="0.1", pnet_rand=True, verbose=False)
    features = {k.removeprefix("features."): v for k, v in alexnet_state.items() if k.startswith("features.")}
    try:
        for i, (lo, hi) in enumerate(SLICES, start=1):
            part = {k: v for k, v in features.items() if lo <= int(k.split(".")[0]) < hi}
            getattr(net.net, f"slice{i}").load_state_dict(part)
    except (RuntimeError, ValueError) as exc:
        raise MissingWeightsError(f"{provenance.get('alexnet_file')}: not torchvision AlexNet weights "
                                  f"({str(exc).splitlines()[0]})") from exc
    with torch.no_grad():
        for i, lin in enumerate(net.lins):
            lin.model[-1].weight.copy_(heads[i].reshape(lin.model[-1].weight.shape))
    provenance = {"version": "LPIPS v0.1", "network": "alex", "library": f"lpips {_package_version()}",
                  **provenance, "input": "uint8 RGB at the compared size -> [-1, 1], no resize"}
    return LPIPS(net.eval(), provenance)


def _package_version() -> str:
    from importlib.metadata import version

    return version("lpips")


def _package_heads() -> list[Path]:
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(loc) / "weights" / "v0.1" / "alex.pth" for loc in spec.submodule_search_locations]


def find_lpips_weights(alexnet_file: str | os.PathLike | None, heads_file: str | os.PathLike | None
                       ) -> tuple[Path | None, Path | None]:
    """(AlexNet file, heads file), each None when not found (a configured file must exist)."""
    net = find_weights(alexnet_file, (ALEXNET_FILE,), ALEXNET_KEY)
    heads = find_weights(heads_file, LPIPS_HEAD_FILES, LPIPS_KEY)
    if heads is None:
        heads = next((p for p in _package_heads() if p.is_file()), None)
    return net, heads


def lpips_absent_reason(net: Path | None, heads: Path | None) -> str:
    parts = []
    if net is None:
        parts.append(absent_reason("AlexNet (ImageNet)", (ALEXNET_FILE,), ALEXNET_KEY))
    if heads is None:
        parts.append(f"the LPIPS v0.1 AlexNet heads are not available: put the lpips package's "
                     f"weights/v0.1/alex.pth at {hub_checkpoints_dir() / LPIPS_HEAD_FILES[0]} or set {LPIPS_KEY}=PATH")
    return "; ".join(parts)


def load_lpips(alexnet_file: str | os.PathLike, heads_file: str | os.PathLike,
               device: torch.device | str = "cpu") -> LPIPS:
    net, heads = Path(alexnet_file), Path(heads_file)
    model = lpips_from_states(load_state_dict(net), load_state_dict(heads), {
        "alexnet_file": str(net), "alexnet_sha256": file_sha256(net),
        "lpips_file": str(heads), "lpips_sha256": file_sha256(heads)})
    return model.to(device)
