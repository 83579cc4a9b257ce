"""Re-ID training losses: cross-entropy with per-image target distributions, and the batch-hard
triplet term of the "bag of tricks" baseline (Luo et al., CVPR 2019 workshops).

Defaults are the paper's baseline (layumi's ft_net): plain cross-entropy, no smoothing, no triplet.
Target distributions (``targets``) cover label smoothing (Szegedy et al.: ``(1 - e) one_hot + e / C``)
and how generated images are labelled (``augment.label``): ``hard`` (the condition image's identity,
as the paper), ``lsro`` (uniform over all identities, Zheng et al. ICCV 2017) or ``smooth`` (the hard
label smoothed with ``label_epsilon``, generated images only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from runtime.config import Bounded, param

LABEL_RULES = ("hard", "lsro", "smooth")


@dataclass
class ReidLossConfig(Bounded):
    label_smoothing: float = param(0.0, "label smoothing epsilon of every image (0: the paper's; 0.1: bag of tricks)",
                                   at_least=0.0, below=1.0)
    triplet_weight: float = param(0.0, "weight of the batch-hard triplet term (0: none, the paper's; 1: bag of "
                                  "tricks, with data.sampler=RandomIdentitySampler)", at_least=0.0)
    triplet_margin: float = param(0.3, "triplet margin (bag of tricks: 0.3)", at_least=0.0)
    generated_label: str = param("hard", "target of synthesised training images (manifest.csv source generated or "
                                 "copied): hard (the condition's identity, the paper's), lsro (uniform over the "
                                 "identities), smooth (hard, smoothed by generated_epsilon)", choices=list(LABEL_RULES))
    generated_epsilon: float = param(0.1, "smoothing epsilon of synthesised images with generated_label=smooth",
                                     at_least=0.0, at_most=1.0)


def targets(labels: torch.Tensor, n_classes: int, *, smoothing: float = 0.0, generated: torch.Tensor | None = None,
            rule: str = "hard", epsilon: float = 0.0) -> torch.Tensor:
    """(N, C) target distributions. Real images: one-hot smoothed by ``smoothing``. Generated images
    (``generated`` a bool mask): ``hard`` as real images, ``lsro`` uniform 1 / C, ``smooth`` one-hot
    smoothed by ``epsilon``."""
    if rule not in LABEL_RULES:
        raise ValueError(f"loss.generated_label (augment.label)={rule!r} is not one of {', '.join(LABEL_RULES)}")
    one_hot = nn.functional.one_hot(labels, n_classes).float()
    out = one_hot * (1.0 - smoothing) + smoothing / n_classes
    if generated is None or rule == "hard" or not bool(generated.any()):
        return out
    special = torch.full_like(out, 1.0 / n_classes) if rule == "lsro" else one_hot * (1.0 - epsilon) + epsilon / n_classes
    return torch.where(generated[:, None], special, out)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_c target_c log softmax(logits)_c`` (fp32)."""
    return -(target * nn.functional.log_softmax(logits.float(), dim=1)).sum(1).mean()


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """For each anchor: hardest positive (farthest same identity) and hardest negative (closest other
    identity), Euclidean distances, ``mean(relu(d_ap - d_an + margin))``; anchors without a positive
    or a negative in the batch are skipped (0 if none has both)."""
    f = features.float()
    dist = torch.cdist(f, f).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    valid = pos.any(1) & neg.any(1)
    if not bool(valid.any()):
        return f.sum() * 0.0
    d_ap = torch.where(pos, dist, torch.zeros_like(dist)).max(1).values
    d_an = torch.where(neg, dist, torch.full_like(dist, float("inf"))).min(1).values
    return nn.functional.relu(d_ap - d_an + margin)[valid].mean()


class ReidLoss:
    """``loss(logits, features, labels, generated=None) -> (total, {"ce": .., "triplet": ..})``."""

    def __init__(self, config: ReidLossConfig, n_classes: int) -> None:
        self.config, self.n_classes = config, n_classes
        self.rule, self.epsilon = config.generated_label, config.generated_epsilon

    def __call__(self, logits: torch.Tensor, features: torch.Tensor | None, labels: torch.Tensor,
                 generated: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        if generated is None or self.rule == "hard":  # the plain path: torch's fused cross-entropy
            ce = nn.functional.cross_entropy(logits.float(), labels, label_smoothing=c.label_smoothing)
        else:
            ce = soft_cross_entropy(logits, targets(labels, self.n_classes, smoothing=c.label_smoothing,
                                                    generated=generated, rule=self.rule, epsilon=self.epsilon))
        parts = {"ce": float(ce.detach())}
        total = ce
        if c.triplet_weight > 0:
            if features is None:
                raise ValueError("loss.triplet_weight > 0 needs the model's training feature")
            tri = batch_hard_triplet(features, labels, c.triplet_margin)
            parts["triplet"] = float(tri.detach())
            total = total + c.triplet_weight * tri
        return total, parts
