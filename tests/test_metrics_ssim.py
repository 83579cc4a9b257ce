"""SSIM is scikit-image's with PATN's settings; PSNR, the legacy wrap-around PSNR and L1 on images with known
answers."""

from __future__ import annotations

import numpy as np
import pytest

from pona_model.metrics.pixel import l1, mse, psnr, psnr_legacy_wrap
from pona_model.metrics.ssim import ssim


def _images(seed: int, shape=(40, 24, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, shape).astype(np.float64)
    smooth = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1)) / 3  # some structure
    other = np.clip(smooth + rng.normal(0, 25, shape), 0, 255)
    return smooth.round().astype(np.uint8), other.round().astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_equals_scikit_image_with_patn_settings(seed):
    from skimage import metrics
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
    from skimage import metrics
    generated, target = _images(3)
    assert psnr(generated, target) == pytest.approx(metrics.peak_signal_noise_ratio(target, generated), abs=1e-10)


def test_legacy_psnr_wraps_around_as_the_published_tables():
    """The papers' scripts squared uint8 differences: (-d)^2 and d^2 agree mod 256, so errors below 16 read
    right, an error of 16 reads as none (256 = 0 mod 256), 20 as 400 - 256 = 144."""
    target = np.full((8, 6, 3), 100, np.uint8)
    assert psnr_legacy_wrap(target - 5, target) == pytest.approx(psnr(target - 5, target))  # 25 either way
    assert psnr_legacy_wrap(target + 16, target) == np.inf
    assert psnr(target + 16, target) == pytest.approx(10 * np.log10(255**2 / 256))  # 24.05 dB
    assert psnr_legacy_wrap(target + 20, target) == pytest.approx(10 * np.log10(255**2 / 144))  # 26.55, not 22.11
    rng = np.random.default_rng(0)  # unrelated images: about 28 dB legacy, about 8 dB correct
    a, b = (rng.integers(0, 256, (2, 32, 16, 3), dtype=np.uint8) for _ in range(2))
    assert (psnr_legacy_wrap(a, b) > 27).all() and (psnr(a, b) < 9).all()
    with pytest.raises(ValueError, match="8-bit"):
        psnr_legacy_wrap(target.astype(float) + 300, target)
