"""TEST STAND-INS for networks whose real weights cannot be downloaded here (Inception-v3, AlexNet + LPIPS
heads) and for the mediapipe pose estimator. They are small and randomly initialised: they exercise the
metric code end to end, and every number they produce is meaningless. Their provenance says so, and
the result JSON records it."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from pona_model.metrics.inception import FeatureExtractor
from pona_model.metrics.lpips import CHANNELS, LPIPS

STAND_IN = "TEST STAND-IN, randomly initialised, not the real network: its numbers are meaningless"


class _TinyInception(nn.Module):
    """uint8 (B, 3, H, W) -> (pool features, logits), resized to 32 x 32 like Inception resizes to 299."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.nn.functional.interpolate(x.float() / 127.5 - 1, size=(32, 32), mode="bilinear")
        features = self.backbone(x)
        return features, self.head(features)


def stand_in_inception(seed: int = 0, dim: int = 16, classes: int = 10) -> FeatureExtractor:
    """A tiny random CNN in Inception's place: pool features (dim) and logits (classes) at 32 x 32."""
    gen = torch.Generator().manual_seed(seed)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, dim, 3, stride=2), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten())
    head = nn.Linear(dim, classes)
    with torch.no_grad():
        for p in [*backbone.parameters(), *head.parameters()]:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return FeatureExtractor(_TinyInception(backbone, head),
                            {"network": f"{STAND_IN} (tiny CNN for Inception-v3)",
                             "fingerprint": f"test-stand-in-inception-{seed}-{dim}-{classes}"})


def stand_in_alexnet_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised torchvision AlexNet ``features`` state dict (the real file's keys)."""
    from torchvision.models import alexnet

    with torch.device("meta"):
        features = alexnet(weights=None).features
    features = features.to_empty(device="cpu")
    torch.manual_seed(seed)
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            layer.reset_parameters()
    return {f"features.{k}": v for k, v in features.state_dict().items()}


def stand_in_lpips_heads(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random non-negative LPIPS heads under the lpips package's key names."""
    gen = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for i, c in enumerate(CHANNELS)}


def stand_in_lpips(seed: int = 0) -> LPIPS:
    from pona_model.metrics.lpips import lpips_from_states

    return lpips_from_states(stand_in_alexnet_state(seed), stand_in_lpips_heads(seed),
                             {"alexnet_file": STAND_IN, "lpips_file": STAND_IN})


class StandInPoseEstimator:
    """In the mediapipe estimator's place: returns the keypoints registered for an image's bytes
    (none registered: every joint missing)."""

    provenance: ClassVar[dict[str, str]] = {"estimator": f"{STAND_IN} (lookup table for the pose estimator)"}

    def __init__(self) -> None:
        self.table: dict[bytes, np.ndarray] = {}
        self.calls = 0

    def register(self, image: np.ndarray, keypoints: np.ndarray) -> None:
        self.table[np.ascontiguousarray(image).tobytes()] = np.asarray(keypoints)

    def estimate(self, image: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.table.get(np.ascontiguousarray(image).tobytes(), np.full((18, 2), -1, dtype=np.int32))
