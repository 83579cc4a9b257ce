"""The metric networks' common base. Finding their weight files is ``runtime.weights``: a configured file
must exist, an unconfigured one is looked up in the torch hub cache, and when it is not there the metric
is reported as skipped."""

from __future__ import annotations

from torch import nn


class MetricNetwork(nn.Module):
    """A frozen network in evaluation mode with the ``provenance`` a result records beside its scores
    (files and SHA-256, or a test stand-in's label): the metric networks' common base."""

    def __init__(self, net: nn.Module, provenance: dict[str, object]) -> None:
        super().__init__()
        self.net = net
        self.provenance = dict(provenance)
        self.requires_grad_(False)
        self.eval()
