"""SSIM with the settings of PATN's and Deformable GAN's evaluation scripts (docs/evaluation.md).

Their call is scikit-image's ``structural_similarity(reference, generated, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, multichannel=True, data_range=generated.max() -
generated.min())`` on uint8 images; this module makes that call (``channel_axis`` is today's name for
``multichannel``) on float64 copies of each pair: Gaussian-weighted local statistics (sigma 1.5,
truncated at 3.5 sigma, i.e. an 11 x 11 window), population covariance, K1 = 0.01 and K2 = 0.03 of the
data range, the SSIM map cropped by the 5-pixel filter radius and averaged, the three channels' means
averaged. The data range of each pair is the generated image's own max - min over all its channels
(1 for a constant image, which PATN's call would divide by zero with).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

SIGMA = 1.5
TRUNCATE = 3.5
WINDOW = 2 * int(TRUNCATE * SIGMA + 0.5) + 1  # 11: the support scipy's filter uses
K1, K2 = 0.01, 0.03

# Written beside the scores: what moves the number.
SSIM_SETTINGS: dict[str, object] = {
    "library": "scikit-image structural_similarity, PATN settings",
    "gaussian_weights": True,
    "sigma": SIGMA,
    "truncate": TRUNCATE,
    "window": WINDOW,
    "use_sample_covariance": False,
    "K1": K1,
    "K2": K2,
    "border": f"scipy 'reflect' filtering, SSIM map cropped by {(WINDOW - 1) // 2} px before averaging",
    "channels": "SSIM of each RGB channel, averaged",
    "data_range": "max - min of the generated image over all channels, 8-bit units (1 if it is constant)",
    "dtype": "float64",
}


def _as_batch(images: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"{name} must be (H, W, 3) or (B, H, W, 3) RGB, got shape {a.shape}")
    return a


def ssim(generated: np.ndarray, target: np.ndarray) -> np.ndarray | float:
    """SSIM of each generated image against its target: a float for one pair (H, W, 3), else (B,).

    Inputs are 8-bit valued RGB arrays (uint8, or any numeric type holding 0..255 values). SSIM is
    symmetric in its two images except for the data range, which is taken from ``generated``.
    """
    gen = _as_batch(generated, "generated").astype(np.float64)
    tgt = _as_batch(target, "target").astype(np.float64)
    if gen.shape != tgt.shape:
        raise ValueError(f"generated and target shapes differ: {gen.shape} vs {tgt.shape}")
    if min(gen.shape[1:3]) < WINDOW:
        raise ValueError(f"SSIM needs images of at least {WINDOW} x {WINDOW} pixels, got {gen.shape[1:3]}")
    per_image = np.array([
        structural_similarity(t, g, gaussian_weights=True, sigma=SIGMA, truncate=TRUNCATE,
                              use_sample_covariance=False, K1=K1, K2=K2, channel_axis=2,
                              data_range=max(float(g.max() - g.min()), 1.0))
        for g, t in zip(gen, tgt)], dtype=np.float64)
    return float(per_image[0]) if np.asarray(generated).ndim == 3 else per_image
