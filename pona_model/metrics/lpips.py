"""LPIPS (Zhang et al. 2018, version 0.1, AlexNet): learned perceptual distance between image pairs.

The network is torchvision's AlexNet ``features`` (ImageNet weights ``alexnet-owt-7be5be79.pth``),
tapped after its five ReLUs (64, 192, 384, 256, 256 channels). Both images are mapped to [-1, 1],
then shifted and scaled per channel as LPIPS does (shift (-0.030, -0.088, -0.188), scale (0.458,
0.448, 0.450)); each tap is normalised to unit length over its channels (eps 1e-10), the squared
difference is weighted per channel by the LPIPS "lin" heads (non-negative 1 x 1 convolutions, from
the LPIPS v0.1 ``alex.pth`` file), averaged over space and summed over the five taps. Images are
scored at the compared size, not resized.

Neither file can be downloaded here: AlexNet comes from ``metrics.alexnet_weights`` or the torch hub
cache; the heads from ``metrics.lpips_weights``, the hub cache (``lpips_alex_v0.1.pth`` or
``alex.pth``) or an installed ``lpips`` package's ``weights/v0.1/alex.pth``. Missing either, LPIPS is
reported as skipped.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models import alexnet

from pona_model.checkpoint import file_sha256
from pona_model.losses import MissingWeightsError
from pona_model.metrics.weights import absent_reason, find_weights, hub_checkpoints_dir, load_state_dict

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_HEAD_FILES = ("lpips_alex_v0.1.pth", "alex.pth")
ALEXNET_KEY = "metrics.alexnet_weights"
LPIPS_KEY = "metrics.lpips_weights"
TAPS = (1, 4, 7, 9, 11)  # indices of the ReLUs in torchvision's alexnet().features
CHANNELS = (64, 192, 384, 256, 256)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
MIN_SIZE = 31  # the smallest side AlexNet's strides and pools leave at least one pixel of
_HEAD_KEY = re.compile(r"^lin(\d)\.(?:model\.\d+\.)?weight$")


class LPIPS(nn.Module):
    """LPIPS v0.1 over AlexNet features; ``distance`` takes uint8 image batches."""

    def __init__(self, features: nn.Sequential, heads: list[torch.Tensor], provenance: dict[str, object]) -> None:
        super().__init__()
        if len(heads) != len(TAPS):
            raise ValueError(f"LPIPS needs {len(TAPS)} heads, got {len(heads)}")
        self.features = features[:TAPS[-1] + 1]
        self.heads = nn.ParameterList([nn.Parameter(h.reshape(1, -1, 1, 1).float(), requires_grad=False)
                                       for h in heads])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.provenance = dict(provenance)
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        x = (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS))
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B,) distances between (B, 3, H, W) images in [-1, 1]."""
        total = torch.zeros(a.shape[0], device=a.device)
        for fa, fb, w in zip(self._taps(a), self._taps(b), self.heads, strict=True):
            total = total + ((fa - fb).pow(2) * w).sum(dim=1).mean(dim=(1, 2))
        return total

    @torch.inference_mode()
    def distance(self, generated: np.ndarray, target: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(B,) float64 LPIPS between uint8 (B, H, W, 3) batches."""
        if len(generated) and min(np.asarray(generated).shape[1:3]) < MIN_SIZE:
            raise ValueError(f"LPIPS (AlexNet) needs images of at least {MIN_SIZE} x {MIN_SIZE} pixels, got "
                             f"{np.asarray(generated).shape[1:3]}")
        device = self.shift.device
        out = []
        for start in range(0, len(generated), batch_size):
            a, b = (torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device)
                    .permute(0, 3, 1, 2).float().div(127.5).sub(1.0) for x in (generated, target))
            out.append(self(a, b).double().cpu())
        return torch.cat(out).numpy() if out else np.zeros(0)


def lpips_from_states(alexnet_state: dict[str, torch.Tensor], head_state: dict[str, torch.Tensor],
                      provenance: dict[str, object]) -> LPIPS:
    """LPIPS from a torchvision AlexNet state dict (``features.*`` keys) and a heads state dict."""
    with torch.device("meta"):  # no time spent initialising the classifier's 58 M weights
        features = alexnet(weights=None).features
    features = features.to_empty(device="cpu")
    own = {k.removeprefix("features."): v for k, v in alexnet_state.items() if k.startswith("features.")}
    try:
        features.load_state_dict(own)
    except RuntimeError as exc:
        raise MissingWeightsError(f"{provenance.get('alexnet_file')}: not torchvision AlexNet weights "
                                  f"({str(exc).splitlines()[0]})") from exc
    heads: dict[int, torch.Tensor] = {}
    for key, value in head_state.items():
        m = _HEAD_KEY.match(key)
        if m:
            heads[int(m.group(1))] = value
    shapes_ok = sorted(heads) == list(range(len(TAPS))) and all(
        heads[i].numel() == c for i, c in enumerate(CHANNELS))
    if not shapes_ok:
        raise MissingWeightsError(f"{provenance.get('lpips_file')}: not LPIPS AlexNet heads (expected lin0..lin4 "
                                  f"weights with {CHANNELS} channels, found {sorted(head_state)[:8]})")
    provenance = {"version": "LPIPS v0.1", "network": "alex", **provenance,
                  "input": "uint8 RGB at the compared size -> [-1, 1], no resize"}
    return LPIPS(features, [heads[i] for i in range(len(TAPS))], provenance)


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
