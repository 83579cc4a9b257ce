"""Inception-v3 features for IS, mask-IS and FID; the scores; cached real-image statistics.

Weights cannot be downloaded here. ``find_inception_weights`` takes a configured file, else looks in
the torch hub cache for (first) the standard FID weights ``pt_inception-2015-12-05-6726825d.pth`` (the
TF 2015-12-05 Inception graph ported to PyTorch: 1008 classes, with the graph's own pooling quirks,
which FID and the original IS were defined with), then torchvision's ImageNet weights
``inception_v3_google-0cc3c7bd.pth`` (1000 classes). The file's class count tells which one it is;
the two give different IS and FID, so the JSON records the variant and the file's SHA-256.

Both variants see the same input: 8-bit RGB at the compared size, scaled to [0, 1], resized to
299 x 299 by bilinear interpolation (``align_corners=False``, no antialiasing; people crops are
stretched to the square, as the TF graph did), then mapped to [-1, 1]. Features are the 2048-d pool3
activations (after the global average pool); logits come from the final fully connected layer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import rel_entr
from torch import nn
from torchvision.models.inception import BasicConv2d, Inception3, InceptionE

from pona_model.atomic import atomic_path
from pona_model.checkpoint import file_sha256
from pona_model.losses import MissingWeightsError
from pona_model.metrics.weights import absent_reason, find_weights, load_state_dict

log = logging.getLogger(__name__)

FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
TORCHVISION_INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
INCEPTION_FILES = (FID_INCEPTION_FILE, TORCHVISION_INCEPTION_FILE)
INCEPTION_KEY = "metrics.inception_weights"
INPUT_SIZE = 299
INPUT_DESCRIPTION = ("uint8 RGB at the compared size -> [0, 1] -> bilinear resize to {size} x {size} "
                     "(torch, align_corners=False, no antialias) -> [-1, 1]")
STATS_FORMAT = "pona-fid-stats/1"


# ----------------------------------------------------------------------------- the network

class FeatureExtractor(nn.Module):
    """uint8 images -> (pool features, logits): a backbone ending in a global pool and a linear head.

    The real Inception-v3 is one; tests use small randomly initialised stand-ins of the same shape,
    whose ``provenance`` says so, in place of weights that cannot be downloaded.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, input_size: int, provenance: dict[str, object]
                 ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.input_size = int(input_size)
        self.provenance = dict(provenance)
        self.eval()

    @property
    def fingerprint(self) -> str:
        """What identifies these weights in a statistics cache key."""
        return str(self.provenance.get("sha256") or self.provenance.get("fingerprint") or "")

    @torch.inference_mode()
    def embed(self, images: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(B, H, W, 3) uint8 -> features (B, D) float64 and logits (B, K) float64."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected (B, H, W, 3) RGB images, got shape {images.shape}")
        device = next(self.parameters()).device
        feats, logits = [], []
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
            x = x.to(device).permute(0, 3, 1, 2).float().div(255.0)
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=False)
            f = self.backbone(x * 2.0 - 1.0).flatten(1)
            feats.append(f.double().cpu())
            logits.append(self.head(f).double().cpu())
        if not feats:
            return np.zeros((0, 0)), np.zeros((0, 0))
        return torch.cat(feats).numpy(), torch.cat(logits).numpy()


class _AvgPoolExcludingPadConv(BasicConv2d):
    """The pool branch's 1x1 conv, fed as if the 3x3 average pool before it excluded the padding.

    torchvision's blocks pool with ``count_include_pad=True`` (border sums divided by 9); the TF graph
    divides by the number of real pixels. Rescaling the pooled map by 9 / (real pixels under the
    window) before the conv turns the one into the other exactly, and keeps the state-dict keys.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ones = torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device)
        counts = F.avg_pool2d(ones, kernel_size=3, stride=1, padding=1, divisor_override=1)
        return super().forward(x * (9.0 / counts))


class _MaxPoolInceptionE(InceptionE):
    """The last block of the TF graph: its pool branch takes a 3x3 max pool, not an average."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b3 = self.branch3x3_1(x)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return [
            self.branch1x1(x),
            torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1),
            torch.cat([self.branch3x3dbl_3a(d3), self.branch3x3dbl_3b(d3)], 1),
            self.branch_pool(F.max_pool2d(x, kernel_size=3, stride=1, padding=1)),
        ]


def build_inception(num_classes: int = 1000, fid_variant: bool = False) -> Inception3:
    """torchvision's Inception-v3 (no aux head, no input transform, untrained); ``fid_variant`` gives
    the TF FID graph's pooling: average pools that exclude padding, a max pool in the last block."""
    net = Inception3(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=False)
    if fid_variant:
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7b"):
            block = getattr(net, name)
            old = block.branch_pool
            block.branch_pool = _AvgPoolExcludingPadConv(old.conv.in_channels, old.conv.out_channels,
                                                         kernel_size=1)
        net.Mixed_7c = _MaxPoolInceptionE(2048)
    return net.eval()


def inception_from_state(state: dict[str, torch.Tensor], provenance: dict[str, object]) -> FeatureExtractor:
    """A FeatureExtractor from an Inception-v3 state dict of either variant (told by the class count)."""
    if "fc.weight" not in state or "Conv2d_1a_3x3.conv.weight" not in state:
        raise MissingWeightsError(f"{provenance.get('file', 'the weights')} is not an Inception-v3 state dict "
                                  "(no fc.weight / Conv2d_1a_3x3.conv.weight)")
    num_classes = int(state["fc.weight"].shape[0])
    if num_classes not in (1000, 1008):
        raise MissingWeightsError(f"{provenance.get('file')}: Inception-v3 with {num_classes} classes is neither "
                                  "torchvision's (1000) nor the FID weights (1008)")
    fid_variant = num_classes == 1008
    net = build_inception(num_classes, fid_variant)
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise MissingWeightsError(f"{provenance.get('file')}: does not match Inception-v3 "
                                  f"({str(exc).splitlines()[0]})") from exc
    head = net.fc
    net.fc = nn.Identity()
    provenance = {
        "network": "inception_v3",
        "variant": ("pt_inception-2015-12-05: the TF FID Inception graph, 1008 classes" if fid_variant
                    else "torchvision Inception-v3 ImageNet weights, 1000 classes"),
        "classes": num_classes,
        **provenance,
        "input": INPUT_DESCRIPTION.format(size=INPUT_SIZE),
        "features": "pool3, 2048-d (after the global average pool)",
    }
    return FeatureExtractor(net, head, INPUT_SIZE, provenance)


def find_inception_weights(configured: str | os.PathLike | None) -> Path | None:
    """The configured file, else the FID weights or torchvision's file in the torch hub cache, else None."""
    return find_weights(configured, INCEPTION_FILES, INCEPTION_KEY)


def inception_absent_reason() -> str:
    return absent_reason("Inception-v3", INCEPTION_FILES, INCEPTION_KEY)


def load_inception(path: str | os.PathLike, device: torch.device | str = "cpu") -> FeatureExtractor:
    """The Inception-v3 feature extractor from a local weights file, on ``device``."""
    path = Path(path)
    net = inception_from_state(load_state_dict(path), {"file": str(path), "sha256": file_sha256(path)})
    return net.to(device)


# ----------------------------------------------------------------------------- the scores

def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over ``splits`` contiguous, equal-as-possible chunks (in the given order) of
    exp(E_x KL(p(y|x) || p(y))), p(y) the chunk's mean softmax; the original IS recipe."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {logits.shape}")
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"the Inception Score with {splits} splits needs at least {splits} images, got {n}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    scores = []
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        scores.append(np.exp(rel_entr(part, marginal).sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as pytorch-fid) of (N, D) features, N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need (N, D) features with N >= 2, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    Tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric PSD
    matrix S1^(1/2) S2 S1^(1/2), which has the same spectrum as S1 S2: no complex square roots and no
    regularising offset are needed for singular covariances (fewer images than feature dimensions).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    root = _psd_sqrt(s1)
    middle = root @ s2 @ root
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


# ----------------------------------------------------------------------------- cached real statistics

def files_digest(paths: Sequence[Path]) -> str:
    """SHA-256 over the names, sizes and modification times of ``paths`` (a changed folder changes it)."""
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def default_stats_cache(key: dict[str, object]) -> Path:
    """``$XDG_CACHE_HOME/pona/fid-stats/<hash of key>.npz`` (``~/.cache`` when unset)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return root / "pona" / "fid-stats" / f"{digest}.npz"


def cached_statistics(cache: Path, key: dict[str, object], compute: Callable[[], np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """(mu, sigma, n, from_cache): read ``cache`` when its stored key equals ``key``, else call
    ``compute()`` for the (N, D) features, and write mu, sigma, N and the key there atomically."""
    key_text = json.dumps({"format": STATS_FORMAT, **key}, sort_keys=True)
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                if str(stored["key"]) == key_text:
                    return stored["mu"], stored["sigma"], int(stored["n"]), True
            log.warning("FID statistics cache %s was made for other settings or images: recomputing", cache)
        except (OSError, KeyError, ValueError) as exc:
            log.warning("FID statistics cache %s is unreadable (%s): recomputing", cache, exc)
    features = compute()
    mu, sigma = feature_statistics(features)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mu=mu, sigma=sigma, n=np.int64(len(features)), key=np.array(key_text))
    return mu, sigma, len(features), False
