"""Non-local attention of the PoNA generator (docs/architecture.md "Generator", steps 1 and 5; paper eqs. 2 and 4-7).

Both attentions use the SAGAN form: 1x1 convs map feature maps to queries, keys (D/8 channels) and
values (D channels); the attention map is softmax over the key axis of the *unscaled* dot products
Q^T K (no 1/sqrt(d): the authors' code has none, and the learnt 1x1 convs absorb any scale), and
the output at position i is sum_j A[i, j] V[:, j] ("V A^T" in the notation of docs/architecture.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def reference_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax_j(q_i . k_j) v_j written out: q, k (B, N, d), v (B, N, Dv) -> (B, N, Dv).

    The math of docs/architecture.md written out; kept as the ground truth the fused kernel is tested against.
    """
    energy = torch.bmm(q, k.transpose(1, 2))  # (B, N_query, N_key)
    weights = torch.softmax(energy, dim=-1)  # softmax over keys
    return torch.bmm(weights, v)


class DotProductAttention(nn.Module):
    """Unscaled softmax attention on flat sequences, (B, N, d) x3 -> (B, N, Dv).

    A module of its own so the FLOP counter (``flops.py``) can hook the two N x N matmuls.
    ``scaled_dot_product_attention(scale=1.0)`` is the same function as ``reference_attention``
    but picks a fused kernel (flash / memory-efficient) on CPU and CUDA and never materialises
    softmax(Q^T K) in fp32 when it does not have to.
    """

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        # A singleton head axis: the fused kernels are written for (B, heads, N, d).
        out = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0)
        return out.squeeze(1)


def _attend(core: DotProductAttention, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Attention between feature maps: q, k (B, d, H, W), v (B, Dv, H, W) -> (B, Dv, H, W)."""
    b, dv, h, w = v.shape
    out = core(q.flatten(2).transpose(1, 2), k.flatten(2).transpose(1, 2), v.flatten(2).transpose(1, 2))
    return out.transpose(1, 2).reshape(b, dv, h, w)


class SelfAttention(nn.Module):
    """SA(D) on the fused code (docs/architecture.md step 1, paper eq. 2): x + gamma * attn(x) + beta * x.

    gamma and beta start at 0, so at initialisation the module is exactly the identity and the
    block first relies on local (convolutional) evidence (paper, after eq. 7).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, channels // 8, kernel_size=1)
        self.key = nn.Conv2d(channels, channels // 8, kernel_size=1)
        self.value = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.beta = nn.Parameter(torch.zeros(1))
        self.attention = DotProductAttention()

    def forward(self, x: Tensor) -> Tensor:
        out = _attend(self.attention, self.query(x), self.key(x), self.value(x))
        return self.gamma * out + self.beta * x + x


class CrossModalAttention(nn.Module):
    """Pose-guided non-local attention (docs/architecture.md step 5, paper eqs. 4-7): x + gamma * attn.

    Query and key come from the pose (guide) code, the value from the image code: the pose decides
    where each image feature is gathered from. gamma starts at 0 (eq. 7), so the module is the
    identity on ``x`` at initialisation.
    """

    def __init__(self, channels: int, guide_channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(guide_channels, channels // 8, kernel_size=1)
        self.key = nn.Conv2d(guide_channels, channels // 8, kernel_size=1)
        self.value = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.attention = DotProductAttention()

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        out = _attend(self.attention, self.query(guide), self.key(guide), self.value(x))
        return self.gamma * out + x
