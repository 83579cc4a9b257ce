"""Which networks a config builds: the generator of ``generator.arch`` (PoNA or PATN) and its two
discriminators. The one place the trainer, inference, the summary and the checkpoint converters
construct models, so a new architecture is added here and nowhere else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from pona_model.discriminator import POSE_CHANNELS, Discriminator
from pona_model.generator import IMAGE_CHANNELS, Generator, GeneratorConfig
from pona_model.patn import PATNGenerator

if TYPE_CHECKING:
    from pona_model.train_config import DiscriminatorConfig


def build_generator(config: GeneratorConfig) -> nn.Module:
    """PoNA (``arch=pona``) or PATN (``arch=patn``), initialised as the authors' code does."""
    return PATNGenerator(config) if config.arch == "patn" else Generator(config)


def build_discriminators(generator: GeneratorConfig, discriminator: DiscriminatorConfig
                         ) -> tuple[Discriminator, Discriminator]:
    """(D_P, D_A): D_P judges cat(image, P_t) (3 + 18 ch), D_A cat(image, I_c) (3 + 3 ch). PoNA's have
    spectral norm, PATN's do not; both use the generator's norm. Built in this order (D_P first), so a
    seeded run draws the same initial weights as before this factory existed."""
    spectral = generator.arch == "pona"
    d = discriminator
    d_pose = Discriminator(IMAGE_CHANNELS + POSE_CHANNELS, d.ndf, d.n_res_blocks, generator.norm, spectral)
    d_app = Discriminator(2 * IMAGE_CHANNELS, d.ndf, d.n_res_blocks, generator.norm, spectral)
    return d_pose, d_app
