"""PATN, the Pose-Attentional Transfer Network (Zhu et al., CVPR 2019; tengteng95/Pose-Transfer), the
generator PoNA was built on and the comparison row of the paper's Table VI ("PATN-augmented").

Same encoders and decoder as PoNA (``generator.Encoder`` / ``Decoder``), same inputs and output; the
block stack is a cascade of PAT blocks instead of PoNA blocks. See docs/patn.md.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .generator import (
    IMAGE_CHANNELS,
    POSE_PAIR_CHANNELS,
    Decoder,
    Encoder,
    GeneratorConfig,
    check_generator_inputs,
    init_weights,
    make_norm,
)


def _stream(in_channels: int, out_channels: int, norm: str, last_norm: bool, dropout: float) -> nn.Sequential:
    """pad1, conv3x3 in->in, norm, ReLU, Dropout(``dropout``: 0.5), pad1, conv3x3 in->out[, norm].

    Module indices follow the authors' Sequential (conv 1, norm 2, dropout 4, conv 6, norm 7), so
    their checkpoint names map one to one (docs/checkpoint-formats.md). Convs carry a bias only with
    instance norm, also the last pose conv that no norm follows, as in the authors' code.
    """
    bias = norm == "instance"
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(1), nn.Conv2d(in_channels, in_channels, kernel_size=3, bias=bias),
        make_norm(norm, in_channels), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, kernel_size=3, bias=bias),
    ]
    if last_norm:
        layers.append(make_norm(norm, out_channels))
    return nn.Sequential(*layers)


class PATBlock(nn.Module):
    """One PAT block: (image code x: C ch, pose code p: C or 2C ch) -> (new x: C, new p: 2C).

    The pose stream's output, squashed by a sigmoid, is a soft mask on the image stream's residual:
    x' = x + image_stream(x) * sigmoid(pose_stream(p)); the next pose code is cat(pose_stream(p), x')
    (the pre-sigmoid pose output first, as in the authors' code).
    """

    def __init__(self, channels: int, pose_channels: int, norm: str, dropout: float = 0.5) -> None:
        super().__init__()
        self.image_stream = _stream(channels, channels, norm, last_norm=True, dropout=dropout)
        self.pose_stream = _stream(pose_channels, channels, norm, last_norm=False, dropout=dropout)

    def forward(self, x: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        pose = self.pose_stream(p)
        x = x + self.image_stream(x) * torch.sigmoid(pose)
        return x, torch.cat((pose, x), dim=1)


class PATNGenerator(nn.Module):
    """I_g = G(I_c, cat(P_c, P_t)) with ``config.n_blocks`` PAT blocks (9 in the authors' models)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        if config.arch != "patn":
            raise ValueError(f"PATNGenerator needs generator.arch=patn, got {config.arch!r}")
        self.config = config
        c = 4 * config.ngf
        self.image_encoder = Encoder(IMAGE_CHANNELS, config.ngf, config.norm)
        self.pose_encoder = Encoder(POSE_PAIR_CHANNELS, config.ngf, config.norm)
        self.blocks = nn.ModuleList(PATBlock(c, c if k == 0 else 2 * c, config.norm, config.block_dropout)
                                    for k in range(config.n_blocks))
        self.decoder = Decoder(config.ngf, config.norm)
        init_weights(self)

    def forward(self, condition_image: Tensor, pose_pair: Tensor) -> Tensor:
        """condition_image (B, 3, H, W) in [-1, 1], pose_pair (B, 36, H, W) -> image (B, 3, H, W)."""
        check_generator_inputs(self.config, condition_image, pose_pair)
        x = self.image_encoder(condition_image)
        p = self.pose_encoder(pose_pair)
        for block in self.blocks:
            x, p = block(x, p)  # the last pose code is discarded
        return self.decoder(x)

