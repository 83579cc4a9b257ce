"""SSIM equals scikit-image's with PATN's settings; PSNR and L1 on images with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pona_model.metrics.pixel import l1, mse, psnr
from pona_model.metrics.ssim import ssim


def _images(seed: int, shape=(40, 24, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, shape).astype(np.float64)
    smooth = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1)) / 3  # some structure
    other = np.clip(smooth + rng.normal(0, 25, shape), 0, 255)
    return smooth.round().astype(np.uint8), other.round().astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_equals_scikit_image_with_patn_settings(seed):
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image (the dev extra) is the SSIM reference")
    generated, target = _images(seed)
    if seed == 2:  # a narrow data range (PATN divides by the generated image's own range)
        generated = (generated // 4 + 100).astype(np.uint8)
    expected = metrics.structural_similarity(
        target, generated, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=2,
        data_range=generated.max() - generated.min())
    assert ssim(generated, target) == pytest.approx(expected, abs=1e-12)


def test_ssim_batch_equals_single_and_identity_is_one():
    pairs = [_images(s) for s in range(3)]
    batch = ssim(np.stack([g for g, _ in pairs]), np.stack([t for _, t in pairs]))
    assert batch.shape == (3,)
    np.testing.assert_allclose(batch, [ssim(g, t) for g, t in pairs], rtol=0, atol=1e-12)
    g, _ = pairs[0]
    assert ssim(g, g) == pytest.approx(1.0)
    constant = np.full_like(g, 7)
    assert np.isfinite(ssim(constant, g))  # data range 0 is taken as 1, never NaN


def test_ssim_rejects_small_or_mismatched_images():
    a = np.zeros((10, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(a, a)
    with pytest.raises(ValueError, match="differ"):
        ssim(np.zeros((20, 20, 3)), np.zeros((20, 21, 3)))


def test_psnr_and_l1_on_known_images():
    target = np.full((8, 6, 3), 100, np.uint8)
    generated = target + 5  # every value off by 5: MSE 25
    assert mse(generated, target) == 25.0
    assert psnr(generated, target) == pytest.approx(10 * np.log10(255**2 / 25))  # 34.1514 dB
    assert l1(generated, target) == pytest.approx(5 / 255)
    half = target.copy()
    half[:4] = 110  # half the pixels off by 10: MSE 50, L1 5/255
    assert psnr(half, target) == pytest.approx(10 * np.log10(255**2 / 50))
    assert l1(half, target) == pytest.approx(5 / 255)
    assert psnr(target, target) == np.inf
    batch = psnr(np.stack([generated, half]), np.stack([target, target]))
    np.testing.assert_allclose(batch, [10 * np.log10(255**2 / 25), 10 * np.log10(255**2 / 50)])


def test_psnr_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image (the dev extra) is the PSNR reference")
    generated, target = _images(3)
    assert psnr(generated, target) == pytest.approx(metrics.peak_signal_noise_ratio(target, generated), abs=1e-10)
