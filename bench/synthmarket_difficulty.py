"""A seconds-long difficulty proxy for a SynthMarket root: colour-histogram re-ID, raw and with a
metric learned (LDA) on all or on a portion of the training images.

It is not the project's re-ID model; it answers "is this dataset trivially easy, and does less
training data hurt?" before anyone trains a CNN. mAP and rank-1 are the project's protocol
(``reid.metrics.evaluate_rankings``, torchreid's plain average precision; same identity and same camera,
and junk, removed from each query's gallery), and the portion kept is drawn by ``augment.subsample``,
the experiment's own rule.

A bench script rather than part of ``synthmarket``: it measures a rendered dataset with the re-ID
protocol and the augmentation's portion rule, both of which sit above the renderer.

  .venv/bin/python bench/synthmarket_difficulty.py root=data/synthmarket
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from augment.subsample import subsample
from reid.metrics import SkippedQueryWarning, evaluate_rankings
from runtime.config import entry_point, param, parse_config

STRIPES = 6
HSV_BINS = (8, 3, 3)
PROG = "python bench/synthmarket_difficulty.py"


def colour_features(images: np.ndarray, centre: bool = True) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, D) float32: HSV histograms of 6 horizontal stripes, square-
    rooted (Hellinger) and L2-normalised. ``centre`` keeps the middle half of the columns, a crude
    foreground prior (the person stands in the middle of a detection box)."""
    if centre:
        w = images.shape[2]
        images = np.ascontiguousarray(images[:, :, w // 4: w - w // 4])
    n, h = images.shape[:2]
    hsv = np.stack([np.asarray(Image.fromarray(im).convert("HSV")) for im in images]).astype(np.int32)
    bins = np.asarray(HSV_BINS)
    q = np.minimum(hsv * bins // 256, bins - 1)
    code = (q[..., 0] * bins[1] + q[..., 1]) * bins[2] + q[..., 2]  # (N, H, W)
    n_codes = int(np.prod(bins))
    stripe = np.minimum(np.arange(h) * STRIPES // h, STRIPES - 1)  # (H,)
    flat = (stripe[None, :, None] * n_codes + code).reshape(n, -1)
    feats = np.stack([np.bincount(f, minlength=STRIPES * n_codes) for f in flat]).astype(np.float32)
    feats = np.sqrt(feats / feats.sum(1, keepdims=True))
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def market_map(dist: np.ndarray, q_ids: np.ndarray, g_ids: np.ndarray, q_cams: np.ndarray,
               g_cams: np.ndarray) -> tuple[float, float]:
    """(mAP, rank-1) as fractions of a query x gallery distance matrix by the project's protocol
    (``reid.metrics.evaluate_rankings``: torchreid's AP; queries without a true match skipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedQueryWarning)
        result = evaluate_rankings(dist, q_ids, g_ids, q_cams, g_cams, ap="torchreid", max_rank=1)
    return result["mAP_torchreid"] / 100.0, result["rank1"] / 100.0


def fit_lda(feats: np.ndarray, labels: np.ndarray, pca_dim: int = 96, reg: float = 1e-2) -> np.ndarray:
    """A linear map (D, k): PCA, then the directions that best separate the identities (Fisher LDA
    with a ridge on the within-class scatter)."""
    mean = feats.mean(0)
    x = feats - mean
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    pca = vt[: min(pca_dim, vt.shape[0])].T
    z = x @ pca
    classes = np.unique(labels)
    means = np.stack([z[labels == c].mean(0) for c in classes])
    within = sum(((z[labels == c] - m).T @ (z[labels == c] - m)) for c, m in zip(classes, means))
    within = within / len(z) + reg * np.eye(z.shape[1]) * np.trace(within) / len(z) / z.shape[1]
    between = (means - z.mean(0)).T @ (means - z.mean(0)) / len(classes)
    evals, evecs = np.linalg.eigh(within)
    white = evecs / np.sqrt(evals)
    b = white.T @ between @ white
    _, bvecs = np.linalg.eigh(b)
    k = max(1, min(len(classes) - 1, z.shape[1]))
    proj = white @ bvecs[:, ::-1][:, :k]
    return pca @ proj


def keep_portion(identities: np.ndarray, portion: float, seed: int) -> np.ndarray:
    """Indices of the training images ``augment.subsample`` keeps at ``portion`` (at least one per
    identity), the images named by their position."""
    train = pd.DataFrame({"name": [f"{i:08d}" for i in range(len(identities))], "identity": identities,
                          "split": "train", "kind": "normal"})
    kept, _ = subsample(train, portion, seed)
    return np.sort(kept["name"].astype(int).to_numpy())


def _load(root: Path, manifest: pd.DataFrame) -> np.ndarray:
    return np.stack([np.asarray(Image.open(root / f).convert("RGB")) for f in manifest["file"]])


def _cosine_dist(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    return 1.0 - q @ g.T


def evaluate(root: str | Path, portions: Sequence[float] = (1.0, 0.2), seeds: int = 3) -> pd.DataFrame:
    """The proxy's table for a dataset root: one row per method and training portion."""
    root = Path(root)
    manifest = pd.read_csv(root / "manifest.csv")
    parts = {s: manifest[manifest.split == s].reset_index(drop=True) for s in ("train", "query", "gallery")}
    feats = {s: colour_features(_load(root, m)) for s, m in parts.items()}
    q, g = parts["query"], parts["gallery"]
    args = (q.identity.to_numpy(), g.identity.to_numpy(), q.camera.to_numpy(), g.camera.to_numpy())
    rows = []
    m_ap, r1 = market_map(_cosine_dist(feats["query"], feats["gallery"]), *args)
    rows.append({"method": "colour histogram", "portion": np.nan, "mAP": m_ap, "rank1": r1, "seeds": 1})
    train_ids = parts["train"].identity.to_numpy()
    for portion in portions:
        scores = []
        for s in range(seeds if portion < 1.0 else 1):
            idx = keep_portion(train_ids, portion, seed=s)
            w = fit_lda(feats["train"][idx], train_ids[idx])
            scores.append(market_map(_cosine_dist(feats["query"] @ w, feats["gallery"] @ w), *args))
        rows.append({"method": "histogram + LDA", "portion": portion, "mAP": float(np.mean([s[0] for s in scores])),
                     "rank1": float(np.mean([s[1] for s in scores])), "seeds": len(scores)})
    return pd.DataFrame(rows)


@dataclass
class DifficultyConfig:
    root: str = param("data/synthmarket", "SynthMarket root (made by python -m synthmarket)")
    portions: list[float] = param([1.0, 0.2], "training portions for the learned metric")
    seeds: int = param(3, "portion draws averaged when portion < 1")


@entry_point(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(DifficultyConfig, argv, prog=PROG, description=__doc__)
    table = evaluate(cfg.root, cfg.portions, cfg.seeds)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
