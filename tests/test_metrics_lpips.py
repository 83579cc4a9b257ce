"""LPIPS with a randomly initialised AlexNet and random heads standing in for the real weights
(tests/metrics_stand_ins.py: NOT the real networks, their numbers are meaningless)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pona_model.losses import MissingWeightsError
from pona_model.metrics.lpips import (
    ALEXNET_FILE,
    LPIPS_HEAD_FILES,
    find_lpips_weights,
    load_lpips,
    lpips_absent_reason,
    lpips_from_states,
)
from tests.metrics_stand_ins import STAND_IN, stand_in_alexnet_state, stand_in_lpips, stand_in_lpips_heads


def test_lpips_is_zero_for_identical_images_and_grows_with_distortion():
    net = stand_in_lpips()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 64, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(net.distance(images, images), 0.0, atol=1e-7)
    slight = np.clip(images.astype(int) + rng.integers(-8, 9, images.shape), 0, 255).astype(np.uint8)
    strong = np.clip(images.astype(int) + rng.integers(-80, 81, images.shape), 0, 255).astype(np.uint8)
    d_slight, d_strong = net.distance(slight, images), net.distance(strong, images, batch_size=2)
    assert (d_slight > 0).all() and (d_strong > d_slight).all()


def test_lpips_matches_a_direct_computation_of_one_layer():
    """The formula on the first tap: unit-normalise over channels, square the difference, weight, average."""
    net = stand_in_lpips()
    a, b = torch.rand(1, 3, 64, 32) * 2 - 1, torch.rand(1, 3, 64, 32) * 2 - 1
    fa, fb = net._taps(a)[0], net._taps(b)[0]
    with torch.no_grad():
        conv1 = net.features[:2]
        xa, xb = conv1((a - net.shift) / net.scale), conv1((b - net.shift) / net.scale)
        ua, ub = xa / (xa.norm(dim=1, keepdim=True) + 1e-10), xb / (xb.norm(dim=1, keepdim=True) + 1e-10)
    torch.testing.assert_close(fa, ua)
    torch.testing.assert_close(fb, ub)


def test_lpips_files_are_found_loaded_or_reported_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr("pona_model.metrics.lpips._package_heads", lambda: [])  # no lpips package
    net, heads = find_lpips_weights("", "")
    assert net is None and heads is None
    reason = lpips_absent_reason(net, heads)
    assert "metrics.alexnet_weights" in reason and "metrics.lpips_weights" in reason
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(stand_in_alexnet_state(), cache / ALEXNET_FILE)
    torch.save(stand_in_lpips_heads(), cache / LPIPS_HEAD_FILES[0])
    net, heads = find_lpips_weights("", "")
    model = load_lpips(net, heads)
    assert model.provenance["version"] == "LPIPS v0.1" and len(model.provenance["lpips_sha256"]) == 64
    images = np.zeros((1, 31, 31, 3), np.uint8)
    assert model.distance(images, images + 50)[0] > 0
    with pytest.raises(ValueError, match="at least 31"):
        model.distance(images[:, :30], images[:, :30])
    with pytest.raises(MissingWeightsError, match=r"metrics\.lpips_weights"):
        find_lpips_weights("", tmp_path / "missing.pth")


def test_wrong_head_files_are_rejected():
    heads = stand_in_lpips_heads()
    heads["lin4.model.1.weight"] = torch.rand(1, 7, 1, 1)
    with pytest.raises(MissingWeightsError, match="LPIPS AlexNet heads"):
        lpips_from_states(stand_in_alexnet_state(), heads, {"lpips_file": STAND_IN})
