"""The generator's optional identity term: the generated image should look like the same person to a
frozen re-ID network, as in DG-Net and FD-GAN (docs/generator-recipe.md, "The identity term").

The network is a released ResNet-50 trunk (``loss.identity_net=released:NAME``, a ``reid-trunk-release``
file made by ``python -m reid.release``), read as data: its sha256 is checked before it is loaded and
its file and hash are recorded in the run's log. It is leak-free only if that trunk never saw a test
person; the repository's ``view-start-synth`` was trained on SynthMarket's auxiliary people only.

The term is the cosine distance ``1 - cos(f(generated) - m, f(target) - m)`` between the trunk's
globally pooled features (2048-d for ResNet-50), averaged over the batch: the target is another real
image of the same person, so the term asks for what a re-ID model uses to match people (colours of
garments, bag, build) and is blind to where the pixels lie. ``m`` is the mean of the batch's target
features: pooled ReLU features are all positive, so raw cosines sit near 1 for everyone (measured on
400 auxiliary images with view-start-synth: 1 - cos is 0.0011 between two images of one person and
0.0017 between two people), and centring them, as a BNNeck does before the re-ID distance, spreads them
(0.68 and 1.01). Target features and ``m`` carry no gradient; the trunk stays in evaluation mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from runtime.errors import MissingWeightsError
from runtime.images import IMAGENET_MEAN, IMAGENET_STD
from runtime.releases import ReleaseError, named_release, verify_trunk_release
from runtime.weights import read_weights, released_trunk_state

IDENTITY_NET_KEY = "loss.identity_net"


def identity_trunk(spec: str) -> tuple[nn.Module, str]:
    """The frozen ResNet trunk that ``loss.identity_net`` names and a note saying which file it was;
    a one-line error when it is not a verified released trunk."""
    name = named_release(spec)
    if name is None:
        raise MissingWeightsError(f"{IDENTITY_NET_KEY}={spec!r}: name a released re-ID trunk, released:<name> "
                                  "(e.g. released:view-start-synth; docs/releases.md)")
    try:
        release = verify_trunk_release(name, role="a ResNet re-ID trunk")
    except ReleaseError as err:
        raise ReleaseError(f"{IDENTITY_NET_KEY}: {err}") from None
    backbone = release.manifest["backbone"]
    trunk_state = released_trunk_state(read_weights(release.path))
    if trunk_state is None:
        raise ReleaseError(f"{release.path} has no 'trunk' state dict; restore it with "
                           f"`git checkout -- {release.path}`")
    trunk = getattr(torchvision.models, backbone)(weights=None)
    trunk.fc = nn.Identity()  # last stride 2; the pooled feature has the same size with either stride
    trunk.load_state_dict({k: v.float() for k, v in trunk_state.items() if not k.startswith("fc.")})
    return trunk, f"{backbone} trunk {release.path} (sha256 {release.sha256[:12]})"


class IdentityLoss(nn.Module):
    """Cosine distance between a frozen re-ID trunk's pooled features of generated and target images.

    Images arrive in [-1, 1]; the trunk expects ImageNet-normalised [0, 1] input, as in re-ID training.
    """

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk.eval()
        self.trunk.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> IdentityLoss:
        """Stays in evaluation mode whatever the trainer sets: the BN statistics are the trunk's own."""
        super().train(mode)
        self.trunk.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(((x + 1) / 2 - self.mean) / self.std).float()

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.features(target)
            centre = target_features.mean(0, keepdim=True)
        return (1 - F.cosine_similarity(self.features(generated) - centre, target_features - centre, dim=1)).mean()
