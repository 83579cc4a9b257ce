"""The two PoNA discriminators, D_P (pose) and D_A (appearance) (docs/architecture.md "Discriminators"; paper Sec. III-D).

Both are the authors' ResNet discriminator: a spectral-norm conv encoder (two stride-2 downsamplings)
and residual blocks, with no final 1-channel conv: the GAN loss averages over the whole
(4*ndf, H/4, W/4) output map. The paper's text mentions self-attention and softmax scores in D;
the released code (ground truth) has neither, so neither is here.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from .generator import IMAGE_CHANNELS, NORMS, make_norm

POSE_CHANNELS = 18


def _sn_conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool, stride: int = 1,
             padding: int = 0, spectral: bool = True) -> nn.Module:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
    return spectral_norm(conv) if spectral else conv


class ResidualBlock(nn.Module):
    """x + [pad1, SN conv3x3, norm, ReLU, Dropout(0.5), pad1, SN conv3x3, norm] (x) - no ReLU after."""

    def __init__(self, channels: int, norm: str, spectral: bool = True) -> None:
        super().__init__()
        bias = norm == "instance"
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), _sn_conv(channels, channels, 3, bias, spectral=spectral),
            make_norm(norm, channels), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.ReflectionPad2d(1), _sn_conv(channels, channels, 3, bias, spectral=spectral),
            make_norm(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Discriminator(nn.Module):
    """Patch-level real/fake scores for ``cat(image, condition)``: (B, C_in, H, W) -> (B, 4*ndf, H/4, W/4).

    Returns RAW scores (logits), no sigmoid: the BCE loss applies ``binary_cross_entropy_with_logits``,
    the same function as sigmoid followed by BCE (the authors' setting) but numerically stable and
    safe under autocast (fp16 sigmoid + BCE is not). The least-squares (DeepFashion) loss uses the raw
    scores as the authors' LSGAN did. Weights keep PyTorch's default init, as the authors' D did (their
    init routine only ran on G); spectral norm rescales every conv weight anyway. ``spectral=False`` is
    PATN's discriminator (the same network without spectral norm; docs/patn.md).
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_res_blocks: int = 3, norm: str = "batch",
                 spectral: bool = True) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), _sn_conv(in_channels, ndf, 7, bias, spectral=spectral), make_norm(norm, ndf),
            nn.ReLU(inplace=True),
        ]
        for mult in (1, 2):
            layers += [_sn_conv(ndf * mult, ndf * mult * 2, 3, bias, stride=2, padding=1, spectral=spectral),
                       make_norm(norm, ndf * mult * 2), nn.ReLU(inplace=True)]
        layers += [ResidualBlock(4 * ndf, norm, spectral) for _ in range(n_res_blocks)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def pose_discriminator(norm: str = "batch") -> Discriminator:
    """D_P: judges ``cat(image, P_t)`` (3 + 18 = 21 channels) for pose consistency."""
    return Discriminator(IMAGE_CHANNELS + POSE_CHANNELS, norm=norm)


def appearance_discriminator(norm: str = "batch") -> Discriminator:
    """D_A: judges ``cat(image, I_c)`` (3 + 3 = 6 channels) for appearance consistency."""
    return Discriminator(2 * IMAGE_CHANNELS, norm=norm)
