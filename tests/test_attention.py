"""The attentions: fused kernel == explicit softmax(Q^T K) math, identity at init, hand-checkable cases."""

from __future__ import annotations

import pytest
import torch

from pona_model.attention import CrossModalAttention, DotProductAttention, SelfAttention, reference_attention


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("magnitude", [1.0, 30.0, 1e3])
def test_fused_attention_matches_reference(magnitude: float) -> None:
    # magnitude 1e3 gives logits ~ 1e7: a softmax without max-subtraction would overflow to NaN.
    q, k = magnitude * torch.randn(2, 64, 8), magnitude * torch.randn(2, 64, 8)
    v = torch.randn(2, 64, 32)
    expected = reference_attention(q, k, v)
    got = DotProductAttention()(q, k, v)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_reference_is_unscaled_softmax_over_keys() -> None:
    q, k, v = torch.randn(1, 5, 4), torch.randn(1, 6, 4), torch.randn(1, 6, 3)
    for i in range(5):
        weights = torch.exp(q[0, i] @ k[0].T)  # no 1/sqrt(d)
        weights = weights / weights.sum()
        torch.testing.assert_close(reference_attention(q, k, v)[0, i], weights @ v[0])


def test_attentions_are_identity_at_init() -> None:
    x = torch.randn(2, 16, 4, 3)
    assert torch.equal(SelfAttention(16)(x), x)
    assert torch.equal(CrossModalAttention(16, 32)(x, torch.randn(2, 32, 4, 3)), x)


def _identity_1x1(conv: torch.nn.Conv2d) -> None:
    with torch.no_grad():
        conv.weight.copy_(torch.eye(conv.out_channels, conv.in_channels)[:, :, None, None])
        conv.bias.zero_()


def test_self_attention_with_uniform_weights_adds_the_spatial_mean() -> None:
    # Zero query/key convs -> all energies 0 -> uniform attention -> every position gets mean(V).
    sa = SelfAttention(16)
    for conv in (sa.query, sa.key):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    _identity_1x1(sa.value)
    with torch.no_grad():
        sa.gamma.fill_(1.0)
        sa.beta.fill_(0.5)
    x = torch.randn(2, 16, 4, 3)
    torch.testing.assert_close(sa(x), x.mean(dim=(2, 3), keepdim=True) + 1.5 * x)


def test_cross_attention_gathers_image_features_where_the_pose_points() -> None:
    # Guide = one-hot position codes; query = s * permutation, key = s * identity, so position i
    # attends (softmax of 0 vs s^2 = 100) to position perm[i]: out[:, i] = x[:, i] + x[:, perm[i]].
    n, s = 4, 10.0
    perm = torch.tensor([2, 0, 3, 1])
    ca = CrossModalAttention(channels=32, guide_channels=n)  # query/key dim 32 // 8 = 4 = n
    with torch.no_grad():
        ca.query.weight.copy_(s * torch.eye(n)[:, perm][:, :, None, None])  # q_i = s e_perm[i]
        ca.key.weight.copy_(s * torch.eye(n)[:, :, None, None])
        ca.query.bias.zero_()
        ca.key.bias.zero_()
        ca.gamma.fill_(1.0)
    _identity_1x1(ca.value)
    guide = torch.eye(n).reshape(1, n, 2, 2)  # position i (row-major in the 2 x 2 grid) carries e_i
    x = torch.randn(1, 32, 2, 2)
    flat = x.flatten(2)
    expected = (flat + flat[:, :, perm]).reshape_as(x)
    torch.testing.assert_close(ca(x, guide), expected, atol=1e-5, rtol=1e-5)


def test_attention_backward_matches_reference() -> None:
    q, k, v = (torch.randn(2, 32, 8, requires_grad=True) for _ in range(3))
    grads_fused = torch.autograd.grad(DotProductAttention()(q, k, v).square().sum(), (q, k, v))
    grads_ref = torch.autograd.grad(reference_attention(q, k, v).square().sum(), (q, k, v))
    for a, b in zip(grads_fused, grads_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
