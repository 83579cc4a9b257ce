"""Forward FLOPs per image, counted with forward hooks (docs/architecture.md: 39.2 / 27.5 / 249 GFLOP).

Convention: a multiply-add is 2 FLOPs; counted are convs, transposed convs, linear layers and the
two N x N matmuls of every attention (Q^T K and V A^T). Bias adds, norms, activations, softmax,
padding and residual adds are left out (together about 0.2 % of the total here). With this convention the generator
comes out at 39.20 (Market, 3 blocks), 27.46 (2 blocks) and 249.25 GFLOP (DeepFashion 256 x 176,
instance norm, 3 blocks), the figures of docs/architecture.md to the rounding shown.

Shapes are all the count needs, so the model is built and run on the ``meta`` device: no memory,
no arithmetic, instant even at 256 x 176.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import DotProductAttention
from .generator import IMAGE_CHANNELS, POSE_PAIR_CHANNELS, GeneratorConfig
from .models import build_generator


def _module_flops(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> int:
    """FLOPs of one call of a counted module over the whole batch (0 for modules not counted)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return 2 * output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        # Every input pixel scatters a (C_out/groups, kh, kw) patch: MACs = |input| * C_out/g * kh * kw.
        kh, kw = module.kernel_size
        return 2 * inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return 2 * output.numel() * module.in_features
    if isinstance(module, DotProductAttention):
        q, k, v = inputs
        n_query, n_key = q.shape[-2], k.shape[-2]
        batch = q.numel() // (n_query * q.shape[-1])
        return 2 * batch * n_query * n_key * (q.shape[-1] + v.shape[-1])
    return 0


def count_flops(module: nn.Module, *inputs: Tensor) -> float:
    """Forward FLOPs per batch element of ``module(*inputs)`` (batch = first input's leading dim)."""
    total = 0

    def hook(m: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        total += _module_flops(m, args, out)

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total / inputs[0].shape[0]


def generator_gflops(config: GeneratorConfig) -> float:
    """Forward GFLOP of the generator for one image of ``config.image_size``."""
    h, w = config.image_size
    with torch.device("meta"):
        model = build_generator(config).eval()
        image = torch.empty(1, IMAGE_CHANNELS, h, w)
        pose = torch.empty(1, POSE_PAIR_CHANNELS, h, w)
    return count_flops(model, image, pose) / 1e9
