"""The discriminators: exact parameter counts (docs/architecture.md), spectral norm on every conv, raw-score output."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from pona_model.discriminator import Discriminator, appearance_discriminator, pose_discriminator


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_official_parameter_counts() -> None:
    assert _trainable(pose_discriminator("batch")) == 3_977_408
    assert _trainable(appearance_discriminator("batch")) == 3_930_368


def test_every_conv_is_spectrally_normalised() -> None:
    d = Discriminator(6, ndf=8, n_res_blocks=3)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 + 2 * 3
    for conv in convs:
        assert parametrize.is_parametrized(conv, "weight")
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_returns_raw_score_map(norm: str) -> None:
    d = Discriminator(21, ndf=8, n_res_blocks=2, norm=norm)
    scores = d(torch.randn(2, 21, 32, 16))
    assert scores.shape == (2, 32, 8, 4)  # 4 * ndf channels at H/4 x W/4, no 1-channel head
    assert (scores < 0).any() and (scores > 1).any()  # logits, not sigmoid probabilities
    scores.mean().backward()
    assert all(p.grad is not None for p in d.parameters())


def test_conv_bias_only_with_instance_norm() -> None:
    for norm, has_bias in (("batch", False), ("instance", True)):
        convs = [m for m in Discriminator(6, ndf=8, norm=norm).modules() if isinstance(m, nn.Conv2d)]
        assert all((c.bias is not None) == has_bias for c in convs)


def test_unknown_norm_is_rejected() -> None:
    with pytest.raises(ValueError, match="norm"):
        Discriminator(6, norm="group")
