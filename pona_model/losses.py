"""The generator's and discriminators' losses (docs/architecture.md, "Losses and training").

L_G = lambda_L1 * L1 + lambda_per * perceptual + lambda_GAN * (GAN(D_P) + GAN(D_A)) / 2
L_D = lambda_GAN * 0.5 * (GAN(D(real), 1) + GAN(D(fake), 0))
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from runtime.errors import MissingWeightsError
from runtime.images import IMAGENET_MEAN, IMAGENET_STD
from runtime.weights import find_weights, hub_paths, read_weights

# torchvision's file name for the ImageNet VGG-19 weights; found in the torch hub cache when present.
VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_KEY = "loss.vgg_weights"

__all__ = ["VGG19_FILE", "PerceptualLoss", "RandomPerceptualLoss", "find_vgg19_weights", "gan_loss",
           "vgg19_missing_message"]


def gan_loss(scores: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """GAN loss averaged over the whole score map of a discriminator.

    ``bce`` is sigmoid + binary cross-entropy (the Market setting), computed as BCE-with-logits,
    which is the same function but stable under mixed precision. ``lsgan`` is the least-squares loss
    on the raw scores (the DeepFashion setting).
    """
    scores = scores.float()
    target = torch.full_like(scores, 1.0 if real else 0.0)
    if mode == "bce":
        return F.binary_cross_entropy_with_logits(scores, target)
    if mode == "lsgan":
        return F.mse_loss(scores, target)
    raise ValueError(f"unknown GAN loss {mode!r}; use 'bce' or 'lsgan'")


def find_vgg19_weights(configured: str | os.PathLike | None) -> Path | None:
    """The configured file if given (it must exist), else torchvision's file in the torch cache."""
    return find_weights(configured, (VGG19_FILE,), VGG19_KEY, what="VGG-19")


def vgg19_missing_message() -> str:
    cache = hub_paths((VGG19_FILE,))[0]
    return (
        "the perceptual loss needs ImageNet VGG-19 weights, which cannot be downloaded on this machine. "
        f"Put torchvision's {VGG19_FILE} at {cache} (or set loss.vgg_weights=PATH to a VGG-19 state dict), "
        "or set loss.vgg_missing=disable to train without the perceptual term (lambda_per is then 0, and the "
        "checkpoint and log record it)."
    )


class PerceptualLoss(nn.Module):
    """L1 between VGG-19 relu1_2 features (torchvision ``features[:4]``) of generated and target.

    Images arrive in [-1, 1]; VGG expects ImageNet-normalised [0, 1] input. Target features carry no
    gradient, as in the authors' code.
    """

    def __init__(self, weights: Path) -> None:
        super().__init__()
        state = read_weights(weights, "VGG-19 state dict")
        if not isinstance(state, dict) or "features.0.weight" not in state or "features.2.weight" not in state:
            raise MissingWeightsError(f"{weights} is not a torchvision VGG-19 state dict "
                                      "(no features.0.weight / features.2.weight)")
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.features[0].load_state_dict({"weight": state["features.0.weight"], "bias": state["features.0.bias"]})
        self.features[2].load_state_dict({"weight": state["features.2.weight"], "bias": state["features.2.bias"]})
        self.features.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.source = str(weights)

    def _phi(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(((x + 1) / 2 - self.mean) / self.std)

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self._phi(target)
        return F.l1_loss(self._phi(generated).float(), target_features.float())


class RandomPerceptualLoss(nn.Module):
    """L1 between the features of a fixed, randomly initialised VGG-style network (Liu et al., CVPR
    2021, "Generic Perceptual Loss": randomly weighted deep networks served as perceptual losses about as
    well as ImageNet VGG in their tests). A stand-in where VGG-19 weights cannot be had.

    Two VGG stages (conv3-64 x 2, pool, conv3-128 x 2), Kaiming-initialised from ``seed`` with a private
    generator, so the same seed gives the same network on any machine and a resumed run the same loss.
    The loss is the mean over both stages' ReLU outputs (relu1_2, relu2_2), each an L1 divided by the
    target features' mean magnitude, so neither stage dominates. docs/generator-recipe.md.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        convs = [nn.Conv2d(3, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1),
                 nn.Conv2d(64, 128, 3, padding=1), nn.Conv2d(128, 128, 3, padding=1)]
        with torch.no_grad():
            for conv in convs:
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                conv.bias.zero_()
        self.stage1 = nn.Sequential(convs[0], nn.ReLU(), convs[1], nn.ReLU())
        self.stage2 = nn.Sequential(nn.AvgPool2d(2), convs[2], nn.ReLU(), convs[3], nn.ReLU())
        self.requires_grad_(False)
        self.source = f"random VGG-style net, seed {seed}"

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.stage1(x)
        return [f1, self.stage2(f1)]

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self._features(target)
        terms = [F.l1_loss(f.float(), t.float()) / (t.float().abs().mean() + 1e-6)
                 for f, t in zip(self._features(generated), target_features)]
        return torch.stack(terms).mean()
