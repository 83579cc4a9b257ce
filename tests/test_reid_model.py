"""The re-ID network: ft_net head, torchreid's plain head, the weights policy, flip-sum features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from reid.features import cosine_distance, flip_sum_features
from reid.model import FtNet, ModelConfig, build_model, classifier_classes, parameter_groups
from runtime.errors import MissingWeightsError


def test_ft_net_resnet50_forward_backward_at_64x32():
    """The paper's network itself: ResNet-50 + 2048 -> 512 -> BN -> dropout -> classifier."""
    torch.manual_seed(0)
    model, note = build_model(ModelConfig(weights="random"), n_classes=7)
    assert note == "random" and isinstance(model, FtNet)
    assert model.bottleneck[0].in_features == 2048 and model.feature_dim == 512
    assert isinstance(model.bottleneck[2], torch.nn.Dropout) and model.bottleneck[2].p == 0.5
    assert model.classifier.weight.std().item() == pytest.approx(0.001, rel=0.3)
    x = torch.randn(4, 3, 64, 32)
    model.train()
    logits = model(x)
    assert logits.shape == (4, 7)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    assert model.backbone.conv1.weight.grad is not None and model.classifier.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (4, 512)


def test_plain_head_is_torchreid_resnet50():
    model, _ = build_model(ModelConfig(head="plain", weights="random"), n_classes=5)
    assert type(model.net).__module__.startswith("torchreid")
    assert model.feature_dim == 2048
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 32)).shape == (2, 2048)
    model.train()
    assert model(torch.randn(2, 3, 64, 32)).shape == (2, 5)
    assert classifier_classes(model.state_dict()) == 5


def test_parameter_groups_split_head_and_trunk():
    model, _ = build_model(ModelConfig(backbone="resnet18", weights="random"), n_classes=3)
    head, trunk = parameter_groups(model, 0.05, 0.1)
    assert head["lr"] == 0.05 and trunk["lr"] == pytest.approx(0.005)
    ids = [id(p) for g in (head, trunk) for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert {id(p) for p in model.classifier.parameters()} <= {id(p) for p in head["params"]}
    assert {id(p) for p in model.bottleneck.parameters()} <= {id(p) for p in head["params"]}


def test_missing_imagenet_weights_say_where_to_put_them(tmp_path: Path):
    # conftest points TORCH_HOME at an empty folder.
    with pytest.raises(MissingWeightsError, match=r"resnet50-0676ba61\.pth.*model\.weights=random"):
        build_model(ModelConfig(), n_classes=3)
    with pytest.raises(MissingWeightsError, match="does not exist"):
        build_model(ModelConfig(weights_file=str(tmp_path / "nope.pth")), n_classes=3)
    bad = tmp_path / "bad.pth"
    torch.save({"something": torch.zeros(1)}, bad)
    with pytest.raises(MissingWeightsError, match="not a torchvision ResNet state dict"):
        build_model(ModelConfig(backbone="resnet18", weights_file=str(bad)), n_classes=3)


def test_imagenet_weights_from_the_torch_cache():
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(1)
    reference = torchvision.models.resnet18().state_dict()
    torch.save(reference, cache / "resnet18-f37072fd.pth")
    model, note = build_model(ModelConfig(backbone="resnet18"), n_classes=3)
    assert note.startswith("imagenet: ") and "resnet18-f37072fd.pth" in note
    assert torch.equal(model.backbone.conv1.weight, reference["conv1.weight"])
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, reference["layer4.1.bn2.running_var"])


def test_feature_is_flip_invariant_by_construction():
    torch.manual_seed(0)
    model, _ = build_model(ModelConfig(weights="random"), n_classes=4)
    model.eval()
    x = torch.randn(3, 3, 64, 32)
    f = flip_sum_features(model, x)
    f_flipped = flip_sum_features(model, torch.flip(x, dims=[3]))
    assert torch.equal(f, f_flipped)
    assert torch.linalg.vector_norm(f, dim=1) == pytest.approx(torch.ones(3), abs=1e-6)
    d = cosine_distance(f, f_flipped)
    assert d.diagonal() == pytest.approx(0.0, abs=1e-6)
    model.train()
    with pytest.raises(RuntimeError, match="eval mode"):
        flip_sum_features(model, x)


def test_feature_extraction_precision_and_layout():
    torch.manual_seed(0)
    model, _ = build_model(ModelConfig(weights="random", backbone="resnet18"), n_classes=4)
    model.eval()
    x = torch.randn(2, 3, 64, 32)
    f32 = flip_sum_features(model, x)
    f16 = flip_sum_features(model, x, dtype=torch.bfloat16)
    assert f16.dtype == torch.float32 and not torch.equal(f16, f32)  # autocast applied, result in fp32
    assert (f16 - f32).abs().max() < 0.05
    layout = flip_sum_features(model.to(memory_format=torch.channels_last), x, memory_format=torch.channels_last)
    assert torch.allclose(layout, f32, atol=1e-5)
