"""LPIPS with a randomly initialised AlexNet and random heads standing in for the real weights
(tests/metrics_stand_ins.py: NOT the real networks, their numbers are meaningless)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pona_model.metrics.lpips import (
    ALEXNET_FILE,
    LPIPS_HEAD_FILES,
    find_lpips_weights,
    load_lpips,
    lpips_absent_reason,
    lpips_from_states,
)
from runtime.errors import MissingWeightsError
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


def _lpips_by_definition(alexnet_state, heads, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS v0.1 written out from the paper: AlexNet taps after its 5 ReLUs on shifted and scaled
    inputs, unit-normalised over channels, squared differences weighted by the heads, spatial mean, sum."""
    from torchvision.models import alexnet

    features = alexnet(weights=None).features
    features.load_state_dict({k.removeprefix("features."): v for k, v in alexnet_state.items()})
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    taps = (1, 4, 7, 9, 11)
    total = torch.zeros(a.shape[0])
    xa, xb = (a - shift) / scale, (b - shift) / scale
    with torch.no_grad():
        for i, layer in enumerate(features[:12]):
            xa, xb = layer(xa), layer(xb)
            if i in taps:
                ua, ub = xa / (xa.norm(dim=1, keepdim=True) + 1e-10), xb / (xb.norm(dim=1, keepdim=True) + 1e-10)
                w = heads[f"lin{taps.index(i)}.model.1.weight"].reshape(1, -1, 1, 1)
                total += ((ua - ub) ** 2 * w).sum(dim=1).mean(dim=(1, 2))
    return total


def test_the_lpips_package_equals_the_definition():
    """The lpips package, loaded from local state dicts, against LPIPS written out by hand."""
    alexnet_state, heads = stand_in_alexnet_state(1), stand_in_lpips_heads(1)
    net = lpips_from_states(alexnet_state, heads, {"lpips_file": STAND_IN})
    rng = np.random.default_rng(3)
    a, b = (rng.integers(0, 256, (3, 64, 40, 3), dtype=np.uint8) for _ in range(2))
    as_tensor = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    expected = _lpips_by_definition(alexnet_state, heads, as_tensor(a), as_tensor(b)).double().numpy()
    np.testing.assert_allclose(net.distance(a, b), expected, rtol=1e-5)
    assert "lpips" in net.provenance["library"]


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
