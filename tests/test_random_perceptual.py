"""loss.perceptual_net=random: a fixed randomly initialised perceptual net that needs no download."""

from __future__ import annotations

import json

import pytest
import torch

from pona_model.losses import RandomPerceptualLoss
from pona_model.trainer import Trainer
from runtime.training import LOG_NAME
from tests.test_trainer import tiny_config


def test_the_network_is_a_function_of_the_seed_alone():
    a, b, c = RandomPerceptualLoss(seed=3), RandomPerceptualLoss(seed=3), RandomPerceptualLoss(seed=4)
    for (name, p), (_, q), (_, r) in zip(a.state_dict().items(), b.state_dict().items(), c.state_dict().items()):
        assert torch.equal(p, q), name
        if name.endswith("weight"):
            assert not torch.equal(p, r), name
    assert not any(p.requires_grad for p in a.parameters())


def test_the_loss_is_zero_on_equal_images_and_scale_free_per_stage():
    torch.manual_seed(0)
    loss = RandomPerceptualLoss(seed=0)
    x = torch.rand(2, 3, 16, 8) * 2 - 1
    y = torch.rand(2, 3, 16, 8) * 2 - 1
    assert loss(x, x).item() == 0.0
    # Each stage's L1 is divided by the target features' mean magnitude. A black-at-zero input has all-zero
    # features (zero biases, ReLU), so its distance to any target is exactly that magnitude: 1 per stage.
    value = loss(torch.zeros_like(x), x).item()
    assert value == pytest.approx(1.0, abs=1e-5)
    assert loss(x, y).item() > 0
    generated = x.clone().requires_grad_(True)
    loss(generated, y).backward()
    assert generated.grad is not None and generated.grad.abs().sum() > 0


def test_the_trainer_uses_it_and_logs_a_nonzero_term(pair_data, tmp_path):
    out = tmp_path / "random"
    trainer = Trainer(tiny_config(pair_data, out, "loss.perceptual_net=random", "loss.lambda_perceptual=1"))
    assert isinstance(trainer.perceptual, RandomPerceptualLoss)
    trainer.fit(max_iterations=2)
    records = [json.loads(line) for line in (out / LOG_NAME).read_text().splitlines()]
    assert records[0]["perceptual"].startswith("random VGG-style net, seed 0")
    assert all(r["g_perceptual"] > 0 for r in records if "g_perceptual" in r)


def test_without_the_key_no_weights_means_no_perceptual_term(pair_data, tmp_path):
    # TINY trains with vgg_missing=disable and no VGG file: the term is off, so the key above is what
    # turned it on.
    trainer = Trainer(tiny_config(pair_data, tmp_path / "off", "loss.lambda_perceptual=1"))
    assert trainer.perceptual is None
