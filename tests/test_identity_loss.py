"""The generator's identity term (``loss.lambda_identity``, ``loss.identity_net``): a frozen, verified
re-ID trunk's centred cosine distance between generated and target images."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torch import nn

from pona_model.identity_loss import IdentityLoss, identity_trunk
from pona_model.train_config import load_train_config
from pona_model.trainer import Trainer
from runtime.errors import ConfigError, MissingWeightsError
from runtime.releases import TRUNK_RELEASE_FORMAT, ReleaseError, write_manifest
from runtime.training import LOG_NAME
from tests.conftest import TINY_TRAIN


def trunk_release(root, name="trunk18", fmt=TRUNK_RELEASE_FORMAT):
    """A released resnet18 trunk (random weights, fp16 like reid.release) under ``root``."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None)
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()
             if not k.startswith("fc.")}
    folder = root / name
    folder.mkdir(parents=True)
    torch.save({"format": fmt, "version": 1, "backbone": "resnet18", "dtype": "float16", "trunk": state},
               folder / "trunk.pt")
    write_manifest(folder, "trunk.pt", name=name, format=fmt, backbone="resnet18")
    return folder / "trunk.pt"


class Flat(nn.Module):
    """A 'trunk' whose feature is the image itself, so the loss can be computed by hand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_the_loss_is_the_centred_cosine_distance_computed_by_hand():
    loss = IdentityLoss(Flat())
    # with mean = std = 1/2 per channel the trunk sees ((x + 1) / 2 - 1/2) / (1/2) = x: set them so
    loss.mean.fill_(0.5)
    loss.std.fill_(0.5)
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).view(2, 3, 1, 1)  # two people's features
    # centre m = (0.5, 0.5, 0): centred targets (0.5, -0.5, 0) and (-0.5, 0.5, 0); uncentred they are
    # orthogonal (1 - cos = 1), centred opposite (1 - cos = 2)
    assert loss(target.flip(0), target).item() == pytest.approx(2.0)  # each gets the other person's features
    assert loss(target, target).item() == pytest.approx(0.0, abs=1e-6)
    both_first = target[:1].expand(2, 3, 1, 1)
    assert loss(both_first, target).item() == pytest.approx((0.0 + 2.0) / 2)


def test_gradients_reach_the_generated_image_and_never_the_trunk(tmp_path, monkeypatch):
    monkeypatch.setenv("PONA_RELEASES", str(tmp_path))
    trunk_release(tmp_path)
    trunk, note = identity_trunk("released:trunk18")
    assert "resnet18" in note and "sha256" in note
    loss = IdentityLoss(trunk).train()  # a trainer's .train() leaves the trunk's BN statistics alone
    assert not loss.trunk.training
    generated = torch.rand(4, 3, 32, 16, requires_grad=True)
    value = loss(generated * 2 - 1, torch.rand(4, 3, 32, 16) * 2 - 1)
    value.backward()
    assert value.item() > 0 and generated.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.trunk.parameters())


def test_the_trunk_must_be_a_verified_trunk_release(tmp_path, monkeypatch):
    monkeypatch.setenv("PONA_RELEASES", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"loss\.identity_net"):
        identity_trunk("some/file.pt")
    trunk_release(tmp_path, "generator", fmt="pona-generator-release")
    with pytest.raises(ReleaseError, match="not a ResNet re-ID trunk"):
        identity_trunk("released:generator")
    path = trunk_release(tmp_path)
    with open(path, "ab") as f:
        f.write(b"x")
    with pytest.raises(ReleaseError, match="trunk18"):
        identity_trunk("released:trunk18")


def test_lambda_identity_changes_training_and_is_logged(pair_data, tmp_path, monkeypatch):
    monkeypatch.setenv("PONA_RELEASES", str(tmp_path / "releases"))
    trunk_release(tmp_path / "releases")

    def train(name, *extra):
        trainer = Trainer(load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={tmp_path / name}", *extra))
        trainer.fit(max_iterations=2)
        records = [json.loads(line) for line in (tmp_path / name / LOG_NAME).read_text().splitlines()]
        return trainer.generator.state_dict(), records

    plain, plain_log = train("plain")
    with_id, id_log = train("identity", "loss.lambda_identity=5", "loss.identity_net=released:trunk18")
    assert any(not torch.equal(plain[k], with_id[k]) for k in plain)  # same seed and batches: only the term differs
    assert "g_identity" not in plain_log[-1] and id_log[-1]["g_identity"] > 0
    assert "trunk18" in id_log[0]["identity"] and "identity" not in plain_log[0]
    with pytest.raises(ConfigError, match="batch_size >= 2"):
        Trainer(load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={tmp_path / 'one'}",
                                  "loss.lambda_identity=1", "schedule.batch_size=1"))
