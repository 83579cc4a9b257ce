"""Pixel-level errors of generated images against their targets: PSNR and L1.

PSNR follows PATN's script (scikit-image ``peak_signal_noise_ratio`` on uint8 images): per image,
10 log10(255^2 / MSE) with the MSE over all pixels and channels, then averaged over the pairs. L1 is
the mean absolute difference over all pixels and channels with images scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np

PSNR_SETTINGS: dict[str, object] = {
    "data_range": 255,
    "per_image": "10 log10(255^2 / MSE), MSE over all pixels and the 3 channels of 8-bit images",
    "average": "mean over pairs of the per-image PSNR; identical pairs (MSE 0, infinite PSNR) are "
               "left out of the mean and counted",
}
L1_SETTINGS: dict[str, object] = {
    "scale": "images in [0, 1] (8-bit values / 255)",
    "per_image": "mean |generated - target| over all pixels and channels",
    "average": "mean over pairs",
}


def _pair(generated: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    gen = np.asarray(generated)
    tgt = np.asarray(target)
    if gen.shape != tgt.shape:
        raise ValueError(f"generated and target shapes differ: {gen.shape} vs {tgt.shape}")
    single = gen.ndim == 3
    if single:
        gen, tgt = gen[None], tgt[None]
    if gen.ndim != 4:
        raise ValueError(f"expected (H, W, C) or (B, H, W, C) images, got shape {np.asarray(generated).shape}")
    return gen.astype(np.float64), tgt.astype(np.float64), single


def mse(generated: np.ndarray, target: np.ndarray) -> np.ndarray | float:
    """Mean squared error per image, in 8-bit units squared."""
    gen, tgt, single = _pair(generated, target)
    err = ((gen - tgt) ** 2).mean(axis=(1, 2, 3))
    return float(err[0]) if single else err


def psnr(generated: np.ndarray, target: np.ndarray) -> np.ndarray | float:
    """PSNR in dB per image of 8-bit valued images; ``inf`` for identical images."""
    err = np.atleast_1d(mse(generated, target))
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(255.0**2 / err)
    return float(value[0]) if np.asarray(generated).ndim == 3 else value


def l1(generated: np.ndarray, target: np.ndarray) -> np.ndarray | float:
    """Mean absolute error per image, with 8-bit values scaled to [0, 1]."""
    gen, tgt, single = _pair(generated, target)
    err = np.abs(gen - tgt).mean(axis=(1, 2, 3)) / 255.0
    return float(err[0]) if single else err
