"""The re-ID baseline the paper used: torchvision ResNet-50 with layumi's "ft_net" head.

``ft_net`` (Person_reID_baseline_pytorch): ResNet-50 up to global average pooling (2048-d), then
Linear(2048, 512) -> BatchNorm1d(512) -> Dropout(0.5) -> Linear(512, n_classes). New layers are
Kaiming-initialised (BN weight ~ N(1, 0.02)), the classifier ~ N(0, 0.001). Training returns the
logits; evaluation returns the 512-d BN output (dropout is the identity then).

``plain`` is torchreid's ``resnet50`` for comparison: global average pooling -> Linear(2048,
n_classes); evaluation returns the 2048-d pooled feature.

ImageNet weights come from a file (``model.weights_file``) or torchvision's file in the torch hub
cache; they are never downloaded. Random initialisation happens only with ``model.weights=random``,
and the returned note ("imagenet: FILE" / "random") is written into the run's log and outputs.
A released start (``model.weights=released:NAME``, ``reid.release``) is the trunk of an earlier
re-ID training, committed in fp16 and verified by its sha256 before it is read (docs/releases.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from reid._torchreid import torchreid_module
from runtime.checkpoint import file_sha256
from runtime.config import param
from runtime.errors import MissingWeightsError
from runtime.releases import (
    RELEASED_PREFIX,
    TRUNK_BACKBONES,
    Release,
    ReleaseError,
    named_release,
    verify_trunk_release,
)
from runtime.weights import find_weights, hub_paths, read_weights, released_trunk_state

log = logging.getLogger(__name__)

HEADS = ("ft_net", "plain", "bnneck")
BACKBONES = TRUNK_BACKBONES
WEIGHT_POLICIES = ("imagenet", "random", "auxiliary")  # or released:NAME, or a file path
# torchvision's file names in $TORCH_HOME/hub/checkpoints (resnet50: V1 weights, then V2).
TORCHVISION_FILES: dict[str, tuple[str, ...]] = {
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
    "resnet34": ("resnet34-b627a593.pth",),
    "resnet18": ("resnet18-f37072fd.pth",),
}
FEATURE_DIMS = {"resnet50": 2048, "resnet34": 512, "resnet18": 512}


@dataclass
class ModelConfig:
    head: str = param("ft_net", "ft_net: layumi's baseline head (2048 -> 512 -> BN -> dropout -> classifier, "
                      "512-d feature); plain: torchreid's resnet50 (pooled feature -> classifier); bnneck: the bag "
                      "of tricks' BNNeck (pooled feature -> BN -> bias-free classifier; triplet on the pooled "
                      "feature, the BN output at test time)", choices=HEADS)
    backbone: str = param("resnet50", "torchvision ResNet trunk (resnet50 is the paper's; the smaller ones "
                          "are for quick checks)", choices=BACKBONES)
    weights: str = param("imagenet", "backbone initialisation: imagenet (a local file or the torch cache; an "
                         "error when absent), random (explicitly untrained), a file (a re-ID checkpoint of "
                         "python -m reid.train, e.g. a pretraining, or a torchvision state dict), released:NAME "
                         "(a committed start, releases/NAME, verified by sha256: docs/releases.md), or auxiliary "
                         "(pipelines only: the pretrain_reid stage's checkpoint on identities outside the "
                         "experiment)")
    weights_file: str = param("", "ImageNet state dict of the backbone; empty = torchvision's file in "
                              "$TORCH_HOME/hub/checkpoints")
    bottleneck: int = param(512, "ft_net: width of the Linear -> BN bottleneck (the evaluation feature)")
    dropout: float = param(0.5, "ft_net: dropout before the classifier")
    last_stride: int = param(2, "stride of the last ResNet stage (2: the paper's baseline)", choices=[1, 2])


# ----------------------------------------------------------------------------- weights

def missing_weights_message(backbone: str) -> str:
    places = " or ".join(str(p) for p in hub_paths(TORCHVISION_FILES[backbone]))
    return (f"model.weights=imagenet needs ImageNet {backbone} weights, which cannot be downloaded on this "
            f"machine. Put torchvision's file at {places} (or set model.weights_file=PATH to a torchvision "
            f"{backbone} state dict), or set model.weights=random to train from random initialisation "
            "(recorded in the checkpoint, the log and the evaluation results).")


def find_backbone_weights(config: ModelConfig) -> Path | None:
    """The weights file to load, or None for ``weights=random``; MissingWeightsError when ImageNet
    weights are asked for and absent."""
    if config.weights == "random":
        return None
    if config.weights == "auxiliary":
        raise MissingWeightsError("model.weights=auxiliary is the pipeline's pretrain_reid stage "
                                  "(python -m pipelines.run reid.model.weights=auxiliary); here pass that stage's "
                                  "checkpoint: model.weights=PATH/checkpoint.pt")
    release = released_start(config.weights, config.backbone)
    if release is not None:
        return release.path
    if config.weights != "imagenet":
        path = Path(config.weights).expanduser()
        if not path.is_file():
            raise MissingWeightsError(f"model.weights={config.weights}: no such file (use imagenet, random, or the "
                                      "path of a re-ID checkpoint or torchvision state dict)")
        return path
    path = find_weights(config.weights_file, TORCHVISION_FILES[config.backbone], "model.weights_file",
                        what=f"ImageNet {config.backbone}", hint=missing_weights_message(config.backbone))
    if path is None:
        raise MissingWeightsError(missing_weights_message(config.backbone))
    return path


def released_start(weights: str, backbone: str, root: str | Path | None = None) -> Release | None:
    """The verified release that ``model.weights=released:NAME`` names (its file and sha256), None for
    any other ``weights``; ReleaseError, one line, when it is absent, altered, not a re-ID trunk, or
    another backbone's."""
    name = named_release(weights)
    if name is None:
        return None
    release = verify_trunk_release(name, root, role="a re-ID start")
    manifest = release.manifest
    if manifest.get("backbone") != backbone:
        raise ReleaseError(f"release {name!r} is a {manifest.get('backbone')} trunk, and model.backbone={backbone}; "
                           f"set model.backbone={manifest.get('backbone')} or name another release")
    return release


def load_backbone_weights(trunk: nn.Module, path: Path, backbone: str) -> None:
    """Load a torchvision ResNet state dict into ``trunk`` (its ``fc`` is ignored): a plain one, a
    re-ID training checkpoint's trunk, or a released start's (fp16, cast to the trunk's dtype)."""
    state = read_weights(path)
    if (released := released_trunk_state(state)) is not None:
        state = released
    elif isinstance(state, dict) and isinstance(state.get("model"), dict) and "format" in state:
        state = trunk_state(state["model"])  # a re-ID training checkpoint: its trunk
    if not isinstance(state, dict) or "conv1.weight" not in state or "layer4.0.conv1.weight" not in state:
        raise MissingWeightsError(f"{path} is not a torchvision ResNet state dict (no conv1.weight / "
                                  "layer4.0.conv1.weight)")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = {k: v for k, v in trunk.state_dict().items() if not k.startswith(("fc.", "classifier."))}
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    missing = [k for k in own if k not in state]
    if wrong or missing:
        raise MissingWeightsError(f"{path} does not fit a torchvision {backbone} ({len(missing)} missing keys, "
                                  f"{len(wrong)} of another shape, e.g. {(wrong or missing)[0]})")
    trunk.load_state_dict({k: state[k] for k in own}, strict=False)


def trunk_state(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trunk of a saved re-ID model (``FtNet`` keeps it under ``backbone.``, ``PlainNet`` under
    ``net.``) under torchvision's key names; the head is new in every training."""
    for prefix in ("backbone.", "net."):
        trunk = {k[len(prefix):]: v for k, v in model_state.items() if k.startswith(prefix)}
        if trunk:
            return trunk
    return model_state


def _file_label(path: Path, policy: str = "imagenet") -> str:
    kind = policy if policy in WEIGHT_POLICIES or policy.startswith(RELEASED_PREFIX) else "checkpoint"
    return f"{kind}: {path} (sha256 {file_sha256(path)[:12]})"


# ----------------------------------------------------------------------------- models

def _resnet_trunk(backbone: str, last_stride: int) -> nn.Module:
    trunk = getattr(torchvision.models, backbone)(weights=None)
    if last_stride == 1:
        block = trunk.layer4[0]
        if isinstance(block, torchvision.models.resnet.Bottleneck):
            block.conv2.stride = (1, 1)
        else:
            block.conv1.stride = (1, 1)
        block.downsample[0].stride = (1, 1)
    trunk.fc = nn.Identity()
    return trunk


class FtNet(nn.Module):
    """ResNet trunk + layumi's ClassBlock. ``forward`` returns logits in training mode and the
    bottleneck feature in evaluation mode."""

    def __init__(self, n_classes: int, backbone: str = "resnet50", bottleneck: int = 512, dropout: float = 0.5,
                 last_stride: int = 2) -> None:
        super().__init__()
        self.backbone = _resnet_trunk(backbone, last_stride)
        self.bottleneck = nn.Sequential(nn.Linear(FEATURE_DIMS[backbone], bottleneck), nn.BatchNorm1d(bottleneck),
                                        nn.Dropout(dropout))
        self.classifier = nn.Linear(bottleneck, n_classes)
        self.feature_dim = bottleneck
        linear, bn = self.bottleneck[0], self.bottleneck[1]
        nn.init.kaiming_normal_(linear.weight, a=0, mode="fan_out")
        nn.init.zeros_(linear.bias)
        nn.init.normal_(bn.weight, 1.0, 0.02)
        nn.init.zeros_(bn.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.bottleneck.parameters(), *self.classifier.parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature = self.bottleneck(self.backbone(x))
        return self.classifier(feature) if self.training else feature

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, the bottleneck feature before dropout, for a triplet term): the same operations
        as ``forward`` in training mode."""
        linear, bn, dropout = self.bottleneck
        feature = bn(linear(self.backbone(x)))
        return self.classifier(dropout(feature)), feature


class BnNeckNet(nn.Module):
    """The bag of tricks' head (Luo et al. 2019): pooled feature -> BatchNorm (bias frozen at 0) ->
    bias-free classifier; the triplet term sees the pooled feature, evaluation the BN output."""

    def __init__(self, n_classes: int, backbone: str = "resnet50", last_stride: int = 2) -> None:
        super().__init__()
        self.backbone = _resnet_trunk(backbone, last_stride)
        dim = FEATURE_DIMS[backbone]
        self.neck = nn.BatchNorm1d(dim)
        self.neck.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, n_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self.feature_dim = dim

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.neck.parameters(), *self.classifier.parameters()]

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.backbone(x)
        return self.classifier(self.neck(pooled)), pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)[0] if self.training else self.neck(self.backbone(x))


class PlainNet(nn.Module):
    """torchreid's ResNet (``torchreid.models.build_model(name, loss='softmax')``): pooled feature ->
    classifier; the pooled feature in evaluation mode."""

    def __init__(self, n_classes: int, backbone: str = "resnet50", last_stride: int = 2) -> None:
        super().__init__()
        models = torchreid_module("torchreid.reid.models")
        self.net = models.build_model(backbone, n_classes, loss="softmax", pretrained=False, use_gpu=False)
        if last_stride == 1:
            block = self.net.layer4[0]
            (block.conv2 if hasattr(block, "conv3") else block.conv1).stride = (1, 1)
            block.downsample[0].stride = (1, 1)
        self.feature_dim = self.net.feature_dim
        self.backbone = self.net  # the trunk, for weight loading (torchvision key names)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.net.classifier.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, pooled feature): torchreid's ResNet forward, keeping the feature."""
        v = self.net.global_avgpool(self.net.featuremaps(x)).flatten(1)
        if self.net.fc is not None:
            v = self.net.fc(v)
        return self.net.classifier(v), v


def build_model(config: ModelConfig, n_classes: int, *, load_weights: bool = True) -> tuple[nn.Module, str]:
    """The configured model and a note on its initialisation (``imagenet: FILE (sha256 ...)`` or
    ``random``). ``load_weights=False`` skips the ImageNet file (the caller loads a checkpoint)."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be positive, got {n_classes}")
    if config.head == "ft_net":
        model: nn.Module = FtNet(n_classes, config.backbone, config.bottleneck, config.dropout, config.last_stride)
    elif config.head == "bnneck":
        model = BnNeckNet(n_classes, config.backbone, config.last_stride)
    elif config.head == "plain":
        model = PlainNet(n_classes, config.backbone, config.last_stride)
    else:
        raise ValueError(f"unknown model.head {config.head!r}; use one of {', '.join(HEADS)}")
    if not load_weights:
        return model, "from checkpoint"
    path = find_backbone_weights(config)
    if path is None:
        log.warning("model.weights=random: %s trained from random initialisation (no ImageNet weights)",
                    config.backbone)
        return model, "random"
    load_backbone_weights(model.backbone, path, config.backbone)
    note = _file_label(path, config.weights)
    log.info("backbone %s", note)
    return model, note


def parameter_groups(model: nn.Module, lr: float, backbone_lr_mult: float) -> list[dict]:
    """SGD groups of the baseline: the new head at ``lr``, the pretrained trunk at ``lr * mult``."""
    head = model.head_parameters()
    head_ids = {id(p) for p in head}
    trunk = [p for p in model.parameters() if id(p) not in head_ids]
    return [{"params": head, "lr": lr, "name": "head"},
            {"params": trunk, "lr": lr * backbone_lr_mult, "name": "backbone"}]


def build_optimizer(model: nn.Module, optim: Any, device: torch.device) -> torch.optim.SGD:
    """The baseline's SGD over ``parameter_groups`` (``optim``: a ``reid.train_config.OptimConfig``).
    PyTorch's fused kernel where the device has one (CPU, CUDA): the same update in one pass over the
    25 M parameters instead of several (measured 5x faster on a CPU, bench/reid_step.py)."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.SGD(parameter_groups(model, optim.lr, optim.backbone_lr_mult), lr=optim.lr,
                           momentum=optim.momentum, nesterov=optim.nesterov, weight_decay=optim.weight_decay,
                           fused=fused or None)


def classifier_classes(state_dict: dict[str, torch.Tensor]) -> int:
    """The number of classes of a saved model (rows of its classifier weight)."""
    for key in ("classifier.weight", "net.classifier.weight"):
        if key in state_dict:
            return int(state_dict[key].shape[0])
    raise KeyError("no classifier.weight in the model state dict")
