"""IS, mask-IS, FID and KID through torch-fidelity: its Inception-v3 (the TF 2015-12-05 FID graph) and its
score functions; the real-image statistics cached here.

Weights cannot be downloaded here. ``find_inception_weights`` takes a configured file, else looks in
the torch hub cache for the FID Inception weights under pytorch-fid's name
``pt_inception-2015-12-05-6726825d.pth`` or torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``
(the same graph; the names end in the same SHA-256 prefix). The file is loaded into torch-fidelity's
``FeatureExtractorInceptionV3``, which does what the TF graph did: 8-bit RGB resized to 299 x 299 by
TF1's bilinear resize, (x - 128) / 128, features = the 2048-d pool3 activations (FID), logits = pool3
times the 1008-class weights without bias (IS, as the original IS code). torchvision's 1000-class
ImageNet Inception is not the FID network: its IS / FID are not comparable with any table, and
torch-fidelity cannot load it, so it is refused with a message naming the file to use instead.

The scores are torch-fidelity's: IS (``isc_features_to_metric``: rows shuffled by numpy
RandomState(2020), then contiguous splits), FID (``fid_statistics_to_metric``: Tr sqrt(S1 S2) from the
eigenvalues of S1 S2, unbiased covariances), KID (``kid_features_to_metric``: unbiased MMD^2 with the
cubic polynomial kernel (x.y / d + 1)^3, averaged over random subsets drawn by numpy RandomState(2020)).
Tests drive the same code with small stand-in networks
(``FeatureExtractor`` over any module mapping uint8 (B, 3, H, W) to (features, logits)).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from pona_model.metrics.weights import MetricNetwork
from runtime.atomic import atomic_path
from runtime.checkpoint import file_sha256
from runtime.errors import MissingWeightsError
from runtime.weights import absent_reason, find_weights, load_state_dict

log = logging.getLogger(__name__)

FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
TORCH_FIDELITY_INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_FILES = (FID_INCEPTION_FILE, TORCH_FIDELITY_INCEPTION_FILE)
INCEPTION_KEY = "metrics.inception_weights"
FID_CLASSES = 1008
IS_SHUFFLE_SEED = 2020  # torch-fidelity's default: IS splits are drawn after this shuffle
# /2: torch-fidelity's network (TF1 resize) and the features themselves (for KID); /1 caches are recomputed
STATS_FORMAT = "pona-fid-stats/2"
INPUT_DESCRIPTION = ("uint8 RGB at the compared size -> torch-fidelity: TF1-compatible bilinear resize to "
                     "299 x 299 -> (x - 128) / 128")
IS_SETTINGS: dict[str, object] = {
    "library": "torch-fidelity isc_features_to_metric",
    "logits": "pool3 x fc weights, no bias (logits_unbiased), as the original IS code",
    "order": f"rows shuffled by numpy RandomState({IS_SHUFFLE_SEED}), then contiguous splits",
}
FID_SETTINGS: dict[str, object] = {
    "library": "torch-fidelity fid_statistics_to_metric",
    "features": "pool3, 2048-d",
    "covariance": "unbiased (N - 1); Tr sqrt(S1 S2) from the eigenvalues of S1 S2",
}
KID_SETTINGS: dict[str, object] = {
    "library": "torch-fidelity kid_features_to_metric",
    "features": "pool3, 2048-d",
    "kernel": "polynomial (x.y / d + 1)^3",
    "estimator": "unbiased MMD^2, mean and std over the subsets",
    "subsets": f"drawn without replacement by numpy RandomState({IS_SHUFFLE_SEED})",
}


class FeatureExtractor(MetricNetwork):
    """uint8 (B, H, W, 3) images -> (pool features, logits) as float64 arrays.

    ``net`` takes uint8 (B, 3, H, W) tensors at any size and returns (features, logits): torch-fidelity's
    Inception-v3 for real scores; tests pass small randomly initialised stand-ins, whose ``provenance``
    says so, in place of weights that cannot be downloaded.
    """

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
        device = next(self.net.parameters()).device
        feats, logits = [], []
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size], dtype=np.uint8))
            f, g = self.net(x.to(device).permute(0, 3, 1, 2).contiguous())
            feats.append(f.double().cpu())
            logits.append(g.double().cpu())
        if not feats:
            return np.zeros((0, 0)), np.zeros((0, 0))
        return torch.cat(feats).numpy(), torch.cat(logits).numpy()


def inception_from_file(path: Path, provenance: dict[str, object]) -> FeatureExtractor:
    """torch-fidelity's Inception-v3 from a local FID weights file, checked first.

    The file is read once with ``weights_only=True`` (tensors only; the shape is checked here, so a
    wrong file fails with a message naming it) before torch-fidelity loads it itself.
    """
    state = load_state_dict(path)
    if "fc.weight" not in state or "Conv2d_1a_3x3.conv.weight" not in state:
        raise MissingWeightsError(f"{path} is not an Inception-v3 state dict (no fc.weight / "
                                  "Conv2d_1a_3x3.conv.weight)")
    classes = int(state["fc.weight"].shape[0])
    if classes != FID_CLASSES:
        raise MissingWeightsError(f"{path}: Inception-v3 with {classes} classes is not the FID network "
                                  f"(1008 classes); use {FID_INCEPTION_FILE} ({INCEPTION_KEY}=PATH)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                              feature_extractor_weights_path=str(path))
    except RuntimeError as exc:
        raise MissingWeightsError(f"{path}: does not match torch-fidelity's Inception-v3 "
                                  f"({str(exc).splitlines()[0]})") from exc
    provenance = {
        "network": "inception_v3 (torch-fidelity FeatureExtractorInceptionV3, the TF 2015-12-05 FID graph)",
        "classes": classes,
        **provenance,
        "input": INPUT_DESCRIPTION,
        "features": "pool3, 2048-d; logits without bias for IS",
    }
    return FeatureExtractor(net, provenance)


def find_inception_weights(configured: str | os.PathLike | None) -> Path | None:
    """The configured file, else the FID Inception weights in the torch hub cache, else None."""
    return find_weights(configured, INCEPTION_FILES, INCEPTION_KEY)


def inception_absent_reason() -> str:
    return absent_reason("Inception-v3", INCEPTION_FILES, INCEPTION_KEY)


def load_inception(path: str | os.PathLike, device: torch.device | str = "cpu") -> FeatureExtractor:
    """The FID Inception-v3 feature extractor from a local weights file, on ``device``."""
    path = Path(path)
    return inception_from_file(path, {"file": str(path), "sha256": file_sha256(path)}).to(device)


# ----------------------------------------------------------------------------- the scores

def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score over ``splits`` splits, by torch-fidelity."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {logits.shape}")
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"the Inception Score with {splits} splits needs at least {splits} images, got {n}")
    out = isc_features_to_metric(torch.from_numpy(logits), splits, True, IS_SHUFFLE_SEED)
    return float(out["inception_score_mean"]), float(out["inception_score_std"])


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (N, D) features, N >= 2, by torch-fidelity."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need (N, D) features with N >= 2, got shape {features.shape}")
    stats = fid_features_to_statistics(torch.from_numpy(features))
    return stats["mu"], stats["sigma"]


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians, by torch-fidelity."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    out = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False)
    return float(out["frechet_inception_distance"])



def kernel_inception_distance(features_1: np.ndarray, features_2: np.ndarray, subsets: int = 100,
                              subset_size: int = 1000) -> tuple[float, float, int]:
    """(mean, std, subset size used) of KID between two (N, D) feature sets, by torch-fidelity;
    the subset size is capped by the smaller set (torch-fidelity itself refuses a larger one)."""
    f1, f2 = (np.asarray(f, dtype=np.float32) for f in (features_1, features_2))
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"KID needs two (N, D) feature sets of one D, got {f1.shape} and {f2.shape}")
    size = min(subset_size, len(f1), len(f2))
    if size < 2 or subsets < 1:
        raise ValueError(f"KID needs subsets >= 1 of at least 2 images each, got {subsets} of {size}")
    out = kid_features_to_metric(torch.from_numpy(f1), torch.from_numpy(f2), kid_subsets=subsets,
                                 kid_subset_size=size, verbose=False, rng_seed=IS_SHUFFLE_SEED)
    return float(out["kernel_inception_distance_mean"]), float(out["kernel_inception_distance_std"]), size

# ----------------------------------------------------------------------------- cached real statistics

def files_digest(paths: Sequence[Path]) -> str:
    """SHA-256 over the names, sizes and content hashes of ``paths``: the statistics cache's key, so an
    edited image is seen whatever its modification time says, and a folder restored or copied with new
    times (same bytes) still reuses its statistics."""
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{p.name}\t{p.stat().st_size}\t{file_sha256(p)}\n".encode())
    return h.hexdigest()


def default_stats_cache(key: dict[str, object]) -> Path:
    """``$XDG_CACHE_HOME/pona/fid-stats/<hash of key>.npz`` (``~/.cache`` when unset)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return root / "pona" / "fid-stats" / f"{digest}.npz"


def cached_statistics(cache: Path, key: dict[str, object], compute: Callable[[], np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(mu, sigma, features, from_cache): read ``cache`` when its stored key equals ``key``, else call
    ``compute()`` for the (N, D) features, and write mu, sigma, the features (float32, as
    torch-fidelity's; KID needs them) and the key there atomically."""
    key_text = json.dumps({"format": STATS_FORMAT, **key}, sort_keys=True)
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                if str(stored["key"]) == key_text:
                    return stored["mu"], stored["sigma"], stored["features"], True
            log.warning("FID statistics cache %s was made for other settings or images: recomputing", cache)
        except (OSError, KeyError, ValueError) as exc:
            log.warning("FID statistics cache %s is unreadable (%s): recomputing", cache, exc)
    features = compute()
    mu, sigma = feature_statistics(features)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mu=mu, sigma=sigma, features=features.astype(np.float32), key=np.array(key_text))
    return mu, sigma, features.astype(np.float32), False
