"""The PoNA generator: two encoders, a stack of PoNA blocks, a decoder (docs/architecture.md "Generator"; paper Fig. 2).

Input: the condition image (3 ch, [-1, 1]) and the pose pair cat(P_c, P_t) (36 ch), same H x W.
Output: the generated image (3 ch, tanh, [-1, 1]). No skip connections from encoder to decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from poseformats.keypoints import pose_maps

from .pona_block import FUSIONS, PoNABlock

NORMS: tuple[str, ...] = ("batch", "instance")
ARCHS: tuple[str, ...] = ("pona", "patn")  # PATN: the generator PoNA was built on (pona_model/patn.py)
MAX_BLOCKS = {"pona": 5, "patn": 20}
IMAGE_CHANNELS = 3
POSE_PAIR_CHANNELS = 36  # 18 keypoint heat maps for the condition pose, 18 for the target pose


@dataclass
class GeneratorConfig:
    """Shape of the generator; the defaults are the paper's Market-1501 model (paper Table II; docs/architecture.md)."""

    arch: str = field(default="pona", metadata={
        "help": "generator architecture: pona (this paper) or patn (Zhu et al. 2019, Table VI's comparison; "
                "docs/patn.md)", "choices": ARCHS})
    image_size: tuple[int, int] = field(
        default=(128, 64), metadata={"help": "input/output image size (H, W); each divisible by 4"})
    ngf: int = field(default=64, metadata={"help": "channels after the first encoder conv; blocks use 4*ngf"})
    n_blocks: int = field(default=3, metadata={
        "help": "number of cascaded blocks (pona: 1..5, Table III; patn: 1..20, the authors use 9)"})
    norm: str = field(default="batch", metadata={
        "help": "norm of encoders and decoder (batch: Market-1501, instance: DeepFashion)", "choices": NORMS})
    fusion: str = field(default="head", metadata={
        "help": "where the image code joins the pose path in each block (Table V)", "choices": FUSIONS})
    self_attention: bool = field(default=True, metadata={
        "help": "self-attention on the fused image/pose code (off = 'w/o Self.', Table IV)"})
    cross_attention: bool = field(default=True, metadata={
        "help": "pose-guided cross-modal attention on the image code (off = 'w/o Cro.', Table IV)"})
    pose_sigma: float = field(default=6.0, metadata={
        "help": "std (pixels) of each joint's Gaussian in the pose maps; 6 is the paper's at 128 x 64 and "
                "256 x 176 (scale it with the image height)"})
    gate_init: float = field(default=0.0, metadata={
        "help": "initial value of the cross-attention gates gamma (paper eq. 7: 0, the block starts as the "
                "identity on the image code and the pose reaches the output only once gamma moves)"})
    block_dropout: float = field(default=0.5, metadata={
        "help": "dropout after the first conv of every unit inside the PoNA blocks, and of both streams of "
                "PATN's blocks (both authors' code: 0.5)"})

    def __post_init__(self) -> None:
        size = tuple(self.image_size) if isinstance(self.image_size, (list, tuple)) else ()
        if (len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)
                or not all(s >= 8 and s % 4 == 0 for s in size)):
            raise ValueError(
                f"image_size must be two ints (H, W), each divisible by 4 (two stride-2 downsamplings) "
                f"and at least 8, got {self.image_size!r}")
        self.image_size = size  # a YAML list becomes the declared tuple
        if isinstance(self.ngf, bool) or not isinstance(self.ngf, int) or self.ngf < 2 or self.ngf % 2:
            raise ValueError(f"ngf must be a positive even int (attention keys have 4*ngf/8 channels), "
                             f"got {self.ngf!r}")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        n_blocks, most = self.n_blocks, MAX_BLOCKS[self.arch]
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or not 1 <= n_blocks <= most:
            raise ValueError(f"n_blocks must be an int in 1..{most} for arch={self.arch}, got {self.n_blocks!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        for name in ("pose_sigma", "gate_init", "block_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            setattr(self, name, float(value))
        if self.pose_sigma <= 0:
            raise ValueError(f"pose_sigma must be > 0 pixels, got {self.pose_sigma!r}")
        if not 0.0 <= self.block_dropout < 1.0:
            raise ValueError(f"block_dropout must be in [0, 1), got {self.block_dropout!r}")
        for name in ("self_attention", "cross_attention"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool (true/false), got {getattr(self, name)!r}")
        if self.arch == "patn" and (self.fusion, self.self_attention, self.cross_attention, self.gate_init) != (
                "head", True, True, 0.0):
            raise ValueError("fusion, self_attention, cross_attention and gate_init are PoNA settings; PATN has "
                             "neither attention nor fusion: leave them at their defaults with arch=patn")


def generator_pose_maps(config: GeneratorConfig, keypoints: Tensor) -> Tensor:
    """(B, 18, 2) keypoints in the generator's frame -> (B, 18, H, W) maps with its ``pose_sigma``: the
    one way training, inference, sample grids and D_P build pose maps, for every architecture."""
    h, w = config.image_size
    return pose_maps(keypoints, h, w, config.pose_sigma)


def generator_pose_pair(config: GeneratorConfig, kp_condition: Tensor, kp_target: Tensor) -> Tensor:
    """cat(P_c, P_t), the generator's pose input."""
    return torch.cat([generator_pose_maps(config, kp_condition), generator_pose_maps(config, kp_target)], 1)


def make_norm(norm: str, channels: int) -> nn.Module:
    """Batch norm (affine) or non-affine instance norm, as the authors' norm switch builds them."""
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.InstanceNorm2d(channels)


class Encoder(nn.Sequential):
    """Reflect-pad 3, conv7x7 -> ngf, then two stride-2 conv3x3 doubling channels; norm + ReLU after each.

    The same class encodes the image (3 ch) and the pose pair (36 ch). Convs carry a bias only with
    instance norm (batch norm's shift makes it redundant), as in the authors' code.
    """

    def __init__(self, in_channels: int, ngf: int, norm: str) -> None:
        bias = norm == "instance"
        super().__init__(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, bias=bias),
            make_norm(norm, ngf), nn.ReLU(inplace=True),
            nn.Conv2d(ngf, 2 * ngf, kernel_size=3, stride=2, padding=1, bias=bias),
            make_norm(norm, 2 * ngf), nn.ReLU(inplace=True),
            nn.Conv2d(2 * ngf, 4 * ngf, kernel_size=3, stride=2, padding=1, bias=bias),
            make_norm(norm, 4 * ngf), nn.ReLU(inplace=True),
        )


class Decoder(nn.Sequential):
    """Two stride-2 transposed conv3x3 halving channels (norm + ReLU), reflect-pad 3, conv7x7 -> 3, tanh."""

    def __init__(self, ngf: int, norm: str, out_channels: int = IMAGE_CHANNELS) -> None:
        bias = norm == "instance"
        up = {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1, "bias": bias}
        super().__init__(
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, **up),
            make_norm(norm, 2 * ngf), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * ngf, ngf, **up),
            make_norm(norm, ngf), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, kernel_size=7),
            nn.Tanh(),
        )


def init_weights(module: nn.Module) -> None:
    """The authors' 'normal' init: conv / transposed-conv / linear weights ~ N(0, 0.02), biases keep
    PyTorch defaults; batch-norm weight ~ N(1, 0.02), bias 0 (docs/architecture.md, "Initialisation")."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def check_generator_inputs(config: GeneratorConfig, condition_image: Tensor, pose_pair: Tensor) -> None:
    """Shapes a generator of ``config`` (PoNA or PATN) accepts, with an error naming the input and size."""
    size = config.image_size
    for name, t, channels in (("condition_image", condition_image, IMAGE_CHANNELS),
                              ("pose_pair", pose_pair, POSE_PAIR_CHANNELS)):
        if t.dim() != 4 or t.shape[1] != channels or tuple(t.shape[2:]) != size:
            raise ValueError(
                f"{name} must have shape (B, {channels}, {size[0]}, {size[1]}) for this generator "
                f"(config.image_size={size}), got {tuple(t.shape)}")
    if condition_image.shape[0] != pose_pair.shape[0]:
        raise ValueError(f"condition_image and pose_pair batch sizes differ: "
                         f"{condition_image.shape[0]} vs {pose_pair.shape[0]}")


class Generator(nn.Module):
    """I_g = G(I_c, cat(P_c, P_t)); weights initialised at construction as the authors' code does."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GeneratorConfig()
        self.image_encoder = Encoder(IMAGE_CHANNELS, config.ngf, config.norm)
        self.pose_encoder = Encoder(POSE_PAIR_CHANNELS, config.ngf, config.norm)
        self.blocks = nn.ModuleList(
            PoNABlock(4 * config.ngf, config.fusion, config.self_attention, config.cross_attention,
                      dropout=config.block_dropout)
            for _ in range(config.n_blocks))
        self.decoder = Decoder(config.ngf, config.norm)
        init_weights(self)
        with torch.no_grad():
            for gate in self.cross_attention_gates():
                gate.fill_(config.gate_init)

    def cross_attention_gates(self) -> list[nn.Parameter]:
        """The gamma of every block's cross attention: the only way the pose reaches the output."""
        return [b.cross_attention.gamma for b in self.blocks if b.cross_attention is not None]


    def _check_inputs(self, condition_image: Tensor, pose_pair: Tensor) -> None:
        check_generator_inputs(self.config, condition_image, pose_pair)

    def forward(self, condition_image: Tensor, pose_pair: Tensor) -> Tensor:
        """condition_image (B, 3, H, W) in [-1, 1], pose_pair (B, 36, H, W) -> image (B, 3, H, W)."""
        self._check_inputs(condition_image, pose_pair)
        x = self.image_encoder(condition_image)
        p = self.pose_encoder(pose_pair)
        for block in self.blocks:
            x, p = block(x, p)  # the last pose code is discarded
        return self.decoder(x)
