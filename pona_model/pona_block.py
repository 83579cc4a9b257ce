"""The PoNA block (docs/architecture.md "Generator", steps 1-6; paper Sec. III-C, Fig. 2 and Fig. 11).

Inside the blocks the norm is always a non-affine InstanceNorm followed by Dropout (0.5, ``block_dropout``) after the
first conv of each unit, whatever the generator's global norm is: the authors' code hard-codes it.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .attention import CrossModalAttention, SelfAttention

Fusion = Literal["head", "middle", "tail", "none"]
FUSIONS: tuple[str, ...] = ("head", "middle", "tail", "none")


class DoubleConv(nn.Module):
    """dc(in, out): conv3x3(in->in) IN ReLU Dropout(0.5) conv3x3(in->out) IN ReLU, optionally x + dc(x).

    Zero padding 1 and biased convs, as in the authors' code (docs/architecture.md, "double-conv unit").
    """

    def __init__(self, in_channels: int, out_channels: int, residual: bool, dropout: float = 0.5) -> None:
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1),
            nn.InstanceNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.InstanceNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class PoNABlock(nn.Module):
    """One PoNA block: (image code x, pose code p), both C channels -> (new x, new p).

    Pose path ("four convs", eq. 3): a residual dc (stage A) then a channel-reducing dc without
    residual (stage B). ``fusion`` says where the image code is concatenated into it (Table V,
    Fig. 11); the self-attention (eq. 2) acts on the fused code right after the concatenation:

    - head (the paper's and the official model): cat(x, p) -> SA_2C -> A: 2C->2C -> B: 2C->C;
    - middle: A: C->C on p -> cat(x, .) -> SA_2C -> B: 2C->C;
    - tail: A: C->C -> B: C->C on p, then cat(x, p') -> SA_2C is the guide of the cross attention
      (its query/key read 2C channels); p' (C channels) goes on to the next block;
    - none: no image code in the pose path; SA_C (if on) acts on p at the head.

    Only head is specified by the authors' code; the other three follow Fig. 11 with the narrowest
    widths that fit, so they are smaller: Market, 3 blocks, 34.33 M (head), 23.71 M (middle),
    16.68 M (tail), 15.90 M (none) parameters.

    Image path: two residual dc(C->C), then the pose-guided cross attention (eqs. 4-7; query and
    key from the guide, value from the image code). ``cross_attention=False`` ("w/o Cro.") leaves
    the updated image code as is - the pose path then no longer reaches the output and its
    parameters get no gradient, which is the ablation; ``self_attention=False`` ("w/o Self.")
    drops SA.
    """

    def __init__(self, channels: int, fusion: Fusion = "head", self_attention: bool = True,
                 cross_attention: bool = True, dropout: float = 0.5) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        c = channels
        self.fusion = fusion
        fused_a = 2 * c if fusion == "head" else c  # stage A width
        fused_b = 2 * c if fusion in ("head", "middle") else c  # stage B input width
        sa_width = c if fusion == "none" else 2 * c
        self.self_attention = SelfAttention(sa_width) if self_attention else None
        self.pose_a = DoubleConv(fused_a, fused_a, residual=True, dropout=dropout)
        self.pose_b = DoubleConv(fused_b, c, residual=False, dropout=dropout)
        self.image_convs = nn.Sequential(DoubleConv(c, c, residual=True, dropout=dropout),
                                         DoubleConv(c, c, residual=True, dropout=dropout))
        guide_width = 2 * c if fusion == "tail" else c
        self.cross_attention = CrossModalAttention(c, guide_width) if cross_attention else None

    def _fuse(self, x: Tensor, p: Tensor) -> Tensor:
        fused = torch.cat((x, p), dim=1)  # image first, as in the authors' code
        return self.self_attention(fused) if self.self_attention is not None else fused

    def forward(self, x: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        if self.fusion == "head":
            p = self.pose_b(self.pose_a(self._fuse(x, p)))
            guide = p
        elif self.fusion == "middle":
            p = self.pose_b(self._fuse(x, self.pose_a(p)))
            guide = p
        elif self.fusion == "tail":
            p = self.pose_b(self.pose_a(p))
            guide = self._fuse(x, p)
        else:
            if self.self_attention is not None:
                p = self.self_attention(p)
            p = self.pose_b(self.pose_a(p))
            guide = p
        x = self.image_convs(x)
        if self.cross_attention is not None:
            x = self.cross_attention(x, guide)
        return x, p
