"""SSIM with the settings of PATN's and Deformable GAN's evaluation scripts (spec "Evaluation").

Their call is scikit-image's ``structural_similarity(reference, generated, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, multichannel=True, data_range=generated.max() -
generated.min())`` on uint8 images. This module computes the same number without scikit-image, for a
whole batch at once: Gaussian-weighted local statistics (sigma 1.5, truncated at 3.5 sigma, i.e. an
11 x 11 window; scipy's ``reflect`` border), population (not sample) covariance, constants
K1 = 0.01 and K2 = 0.03 of the data range, the SSIM map cropped by the 5-pixel filter radius and
averaged, and the three channels' means averaged. The data range of each pair is the generated
image's own max - min over all its channels, in 8-bit units.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIGMA = 1.5
TRUNCATE = 3.5
WINDOW = 2 * int(TRUNCATE * SIGMA + 0.5) + 1  # 11: the support scipy's filter uses
K1, K2 = 0.01, 0.03

# Written beside the scores: what moves the number.
SSIM_SETTINGS: dict[str, object] = {
    "reference": "scikit-image structural_similarity, PATN settings",
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
    data_range = gen.max(axis=(1, 2, 3)) - gen.min(axis=(1, 2, 3))
    data_range = np.maximum(data_range, 1.0)[:, None, None, None]
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2

    def local_mean(x: np.ndarray) -> np.ndarray:
        # Spatial axes only (sigma 0 leaves the batch and channel axes alone).
        return ndimage.gaussian_filter(x, sigma=(0, SIGMA, SIGMA, 0), mode="reflect", truncate=TRUNCATE)

    mu_g, mu_t = local_mean(gen), local_mean(tgt)
    var_g = local_mean(gen * gen) - mu_g * mu_g
    var_t = local_mean(tgt * tgt) - mu_t * mu_t
    cov = local_mean(gen * tgt) - mu_g * mu_t
    ssim_map = ((2 * mu_g * mu_t + c1) * (2 * cov + c2)) / ((mu_g**2 + mu_t**2 + c1) * (var_g + var_t + c2))
    pad = (WINDOW - 1) // 2
    inner = ssim_map[:, pad:-pad, pad:-pad, :]
    per_image = inner.mean(axis=(1, 2), dtype=np.float64).mean(axis=1)
    return float(per_image[0]) if np.asarray(generated).ndim == 3 else per_image
