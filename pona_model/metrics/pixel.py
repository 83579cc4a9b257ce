"""Pixel-level errors of generated images against their targets: PSNR, the published tables' legacy
PSNR, and L1.

``psnr`` is the correct PSNR, scikit-image's ``peak_signal_noise_ratio`` with data range 255: per image
10 log10(255^2 / MSE), the MSE over all pixels and channels in float, averaged over the pairs.

``psnr_legacy_wrap`` reproduces the number the papers' tables print (PoNA's Market row 28.257, PATN's
28.228): their scripts computed the error on the uint8 arrays as loaded, without conversion, so the
difference and its square wrap around modulo 256 (200 - 201 is 255, 16^2 is 0). That number is nearly
blind to quality: the identity baseline (the condition image unchanged) scores about 28 dB on Market
as well, while its correct PSNR is about 14. Report ``psnr``; ``psnr_legacy_wrap`` exists only to put
a run beside a published table (docs/evaluation.md).

L1 is the mean absolute difference over all pixels and channels with images scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

PSNR_SETTINGS: dict[str, object] = {
    "library": "scikit-image peak_signal_noise_ratio",
    "data_range": 255,
    "per_image": "10 log10(255^2 / MSE), MSE over all pixels and the 3 channels of 8-bit images",
    "average": "mean over pairs of the per-image PSNR; identical pairs (MSE 0, infinite PSNR) are "
               "left out of the mean and counted",
}
PSNR_LEGACY_WRAP_SETTINGS: dict[str, object] = {
    "what": "the published tables' PSNR (PATN's and PoNA's scripts): NOT a correct PSNR, for comparison "
            "with papers only",
    "per_image": "10 log10(255^2 / mean((generated - target)^2)) with the difference and the square taken "
                 "on uint8 arrays, so both wrap around modulo 256",
    "average": PSNR_SETTINGS["average"],
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
    """PSNR in dB per image of 8-bit valued images (scikit-image); ``inf`` for identical images."""
    gen, tgt, single = _pair(generated, target)
    with np.errstate(divide="ignore"):
        value = np.array([peak_signal_noise_ratio(t, g, data_range=255) for g, t in zip(gen, tgt)])
    return float(value[0]) if single else value


def psnr_legacy_wrap(generated: np.ndarray, target: np.ndarray) -> np.ndarray | float:
    """The published tables' PSNR in dB per image: the squared error taken on uint8 arrays, wrapping
    around modulo 256 (see the module docstring); ``inf`` when every wrapped difference is 0."""
    gen, tgt, single = _pair(generated, target)
    if gen.min() < 0 or gen.max() > 255 or tgt.min() < 0 or tgt.max() > 255:
        raise ValueError("psnr_legacy_wrap takes 8-bit images (values 0..255)")
    g8, t8 = gen.astype(np.uint8), tgt.astype(np.uint8)
    err = np.square(g8 - t8).mean(axis=(1, 2, 3))  # uint8 arithmetic on purpose: the legacy wrap-around
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(255.0**2 / err)
    return float(value[0]) if single else value


def l1(generated: np.ndarray, target: np.ndarray) -> np.ndarray | float:
    """Mean absolute error per image, with 8-bit values scaled to [0, 1]."""
    gen, tgt, single = _pair(generated, target)
    err = np.abs(gen - tgt).mean(axis=(1, 2, 3)) / 255.0
    return float(err[0]) if single else err
