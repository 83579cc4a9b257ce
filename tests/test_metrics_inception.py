"""IS and FID through torch-fidelity: the formulas on known inputs, loading the FID Inception-v3 from a
local file (a randomly initialised one: the real weights cannot be downloaded here), cached statistics,
and IS / FID end to end through a small randomly initialised stand-in network (tests/metrics_stand_ins.py:
NOT Inception, its numbers are meaningless)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.inception import Inception3

from pona_model.metrics.inception import (
    FID_INCEPTION_FILE,
    TORCH_FIDELITY_INCEPTION_FILE,
    cached_statistics,
    feature_statistics,
    find_inception_weights,
    frechet_distance,
    inception_absent_reason,
    inception_score,
    kernel_inception_distance,
    load_inception,
)
from runtime.errors import MissingWeightsError
from tests.metrics_stand_ins import STAND_IN, stand_in_inception


def test_inception_score_known_values():
    assert inception_score(np.zeros((20, 7)), splits=2) == pytest.approx((1.0, 0.0))  # uniform: IS 1
    confident = np.full((30, 3), -50.0)
    confident[np.arange(30), np.arange(30) % 3] = 50.0  # one-hot, 3 balanced classes: IS 3
    mean, std = inception_score(confident, splits=1)
    assert mean == pytest.approx(3.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    mean, _ = inception_score(confident, splits=10)  # 3 images a split, shuffled: at most 3, below it here
    assert 1.0 <= mean < 3.0 and mean == inception_score(confident, splits=10)[0]  # the shuffle is seeded
    with pytest.raises(ValueError, match="at least 10 images"):
        inception_score(np.zeros((9, 3)), splits=10)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_known_gaussians():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 64)) @ rng.normal(size=(64, 64))  # N < D: singular covariance
    mu, sigma = feature_statistics(features)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6 * np.trace(sigma)
    # Diagonal Gaussians: ||mu1 - mu2||^2 + sum (s1 + s2 - 2 sqrt(s1 s2)) = |d|^2 + sum (sqrt s1 - sqrt s2)^2
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(5.0 + 1.0 + 0.0 + 4.0)
    # Non-commuting covariances: against the eigenvalues of S1 S2 directly
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T, b @ b.T
    expected = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.linalg.eigvals(s1 @ s2).real.clip(0)).sum()
    assert frechet_distance(np.zeros(4), s1, np.zeros(4), s2) == pytest.approx(expected, rel=1e-9)


def test_stand_in_network_runs_is_and_fid_end_to_end():
    net = stand_in_inception()
    assert STAND_IN in net.provenance["network"]
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (24, 32, 16, 3), dtype=np.uint8)
    f_real, logits = net.embed(real, batch_size=5)
    assert f_real.shape == (24, 16) and logits.shape == (24, 10)
    mean, std = inception_score(logits, splits=4)
    assert 1.0 <= mean <= 10.0 and std >= 0
    mu, sigma = feature_statistics(f_real)
    f_same, _ = net.embed(real, batch_size=24)  # batching does not change the features
    np.testing.assert_allclose(f_same, f_real, rtol=1e-5, atol=1e-6)
    assert frechet_distance(*feature_statistics(f_same), mu, sigma) == pytest.approx(0.0, abs=1e-6)
    dark = (real // 4).astype(np.uint8)
    assert frechet_distance(*feature_statistics(net.embed(dark)[0]), mu, sigma) > 1e-3


def _fid_inception_state(classes: int = 1008) -> dict[str, torch.Tensor]:
    """A randomly initialised Inception-v3 state dict under the FID file's keys (torchvision's module
    names, as pytorch-fid saved it): a stand-in for pt_inception-2015-12-05-6726825d.pth."""
    torch.manual_seed(0)
    return Inception3(num_classes=classes, aux_logits=False, transform_input=False, init_weights=True).state_dict()


def test_torch_fidelity_loads_the_fid_weights_file_and_refuses_others(tmp_path):
    path = tmp_path / "stand-in-inception.pth"
    state = _fid_inception_state()
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.ones(1008)
    torch.save(state, path)
    net = load_inception(path)
    assert net.provenance["classes"] == 1008 and len(net.provenance["sha256"]) == 64
    assert "torch-fidelity" in net.provenance["network"]
    features, logits = net.embed(np.zeros((2, 20, 10, 3), np.uint8))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert (features != 0).any() and (logits == 0).all()  # IS logits leave out the bias (logits_unbiased)
    torch.save(_fid_inception_state(1000), tmp_path / "torchvision.pth")
    with pytest.raises(MissingWeightsError, match="not the FID network"):
        load_inception(tmp_path / "torchvision.pth")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(MissingWeightsError, match="not an Inception-v3"):
        load_inception(tmp_path / "other.pth")


def test_weights_are_found_in_the_hub_cache_or_reported_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert find_inception_weights("") is None
    assert "metrics.inception_weights" in inception_absent_reason()
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / TORCH_FIDELITY_INCEPTION_FILE).write_bytes(b"x")
    assert find_inception_weights("") == cache / TORCH_FIDELITY_INCEPTION_FILE  # torch-fidelity's name
    (cache / FID_INCEPTION_FILE).write_bytes(b"x")
    assert find_inception_weights("") == cache / FID_INCEPTION_FILE  # pytorch-fid's name first
    with pytest.raises(MissingWeightsError, match=r"metrics\.inception_weights"):
        find_inception_weights(tmp_path / "nope.pth")


def test_real_statistics_are_computed_once_and_cached(tmp_path):
    calls = []
    rng = np.random.default_rng(0)

    def compute():
        calls.append(1)
        return rng.normal(size=(10, 3))

    cache = tmp_path / "stats.npz"
    mu, sigma, features, cached = cached_statistics(cache, {"images": "a", "network": "x"}, compute)
    assert (len(features), cached, len(calls)) == (10, False, 1) and cache.is_file()
    mu2, sigma2, features2, cached2 = cached_statistics(cache, {"images": "a", "network": "x"}, compute)
    np.testing.assert_array_equal(features, features2)  # KID reads the real features from the cache too
    assert cached2 and len(calls) == 1
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)
    _, _, _, cached3 = cached_statistics(cache, {"images": "a", "network": "other"}, compute)
    assert not cached3 and len(calls) == 2  # other settings: recomputed and rewritten


def _poly(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def test_kernel_inception_distance_known_answers():
    """With one subset of every image, KID is the unbiased MMD^2 with the cubic kernel, written out."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 5)), rng.normal(0.5, 1.0, size=(20, 5))
    kxx, kyy, kxy = _poly(x, x), _poly(y, y), _poly(x, y)
    m = len(x)
    expected = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    mean, std, used = kernel_inception_distance(x, y, subsets=1, subset_size=1000)
    assert used == 20 and std == 0.0  # the subset size is capped by the sets
    assert mean == pytest.approx(expected, rel=1e-4)  # float32 features, as torch-fidelity's
    big = rng.normal(size=(400, 5))
    same, _, _ = kernel_inception_distance(big, big, subsets=50, subset_size=200)
    shifted, _, _ = kernel_inception_distance(big, big + 0.5, subsets=50, subset_size=200)
    assert abs(same) < 0.05 * shifted  # a set against itself: about 0
    assert kernel_inception_distance(x, y, subsets=3, subset_size=5)[2] == 5  # the configured size is used
    with pytest.raises(ValueError, match="subsets >= 1"):
        kernel_inception_distance(x[:1], y, subsets=1, subset_size=10)
