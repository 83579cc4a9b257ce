"""The generator recipe keys (pose_sigma, gate_init, block_dropout, gate_lr_mult, gan_start,
body_l1_weight) and the precision / layout keys: each one changes what it says, and a checkpoint
carries it to inference."""

from __future__ import annotations

import json

import pytest
import torch

from pona_model.checkpoint_tags import GENERATOR_FORMAT
from pona_model.generator import Generator, GeneratorConfig, generator_pose_maps
from pona_model.inference import load_generator
from pona_model.train_config import load_train_config
from pona_model.trainer import Trainer, body_weighted_l1, generator_param_groups
from poseformats.keypoints import pose_maps
from runtime.checkpoint import load_checkpoint
from runtime.device import cpu_has_bf16, resolve_precision
from tests.test_trainer import tiny_config

SMALL = {"image_size": (16, 8), "ngf": 4, "n_blocks": 2}


def test_pose_sigma_sets_the_width_of_the_maps():
    kp = torch.full((1, 18, 2), -1)
    kp[0, 0] = torch.tensor([8, 4])
    narrow = generator_pose_maps(GeneratorConfig(**SMALL, pose_sigma=1.0), kp)
    wide = generator_pose_maps(GeneratorConfig(**SMALL), kp)
    # hand-computed: one pixel away from the joint the map is exp(-1 / (2 sigma^2))
    assert narrow[0, 0, 8, 5].item() == pytest.approx(torch.exp(torch.tensor(-0.5)).item(), rel=1e-6)
    assert wide[0, 0, 8, 5].item() == pytest.approx(torch.exp(torch.tensor(-1 / 72)).item(), rel=1e-6)
    torch.testing.assert_close(wide, pose_maps(kp, 16, 8))  # default: the paper's 6 px


def test_pose_sigma_is_read_back_from_the_checkpoint_and_used_by_inference(pair_data, tmp_path):
    out = tmp_path / "run"
    Trainer(tiny_config(pair_data, out, "generator.pose_sigma=2.5", "precision=fp32")).fit(max_iterations=1)
    model = load_generator(out / "checkpoint.pt", "cpu", precision="fp32")
    assert model.config.pose_sigma == 2.5
    h, w = model.image_size
    cond = torch.zeros(1, 3, h, w)
    kp = torch.tensor([[[h // 2, w // 2]] * 18])
    pair = torch.cat([pose_maps(kp, h, w, 2.5)] * 2, 1)
    with torch.no_grad():
        expected = model.generator(cond, pair)
    torch.testing.assert_close(model.generate(cond, kp, kp), expected)


def test_gate_init_opens_the_cross_attention_and_keeps_parameter_counts():
    closed, opened = Generator(GeneratorConfig(**SMALL)), Generator(GeneratorConfig(**SMALL, gate_init=1.0))
    assert [g.item() for g in closed.cross_attention_gates()] == [0.0, 0.0]
    assert [g.item() for g in opened.cross_attention_gates()] == [1.0, 1.0]
    assert sum(p.numel() for p in closed.parameters()) == sum(p.numel() for p in opened.parameters())


def test_block_dropout_is_the_rate_of_every_block_dropout():
    model = Generator(GeneratorConfig(**SMALL, block_dropout=0.1))
    rates = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.1}
    assert {m.p for m in Generator(GeneratorConfig(**SMALL)).modules() if isinstance(m, torch.nn.Dropout)} == {0.5}


def test_gate_lr_multiplier_lands_in_the_optimiser_groups(pair_data, tmp_path):
    trainer = Trainer(tiny_config(pair_data, tmp_path / "r", "schedule.gate_lr_mult=10", "schedule.lr=0.001"))
    groups = trainer.opt_g.param_groups
    assert [g["initial_lr"] for g in groups] == [pytest.approx(0.001), pytest.approx(0.01)]
    gates = {id(p) for p in trainer.generator.cross_attention_gates()}
    assert {id(p) for p in groups[1]["params"]} == gates
    n_params = sum(1 for _ in trainer.generator.parameters())
    assert sum(len(g["params"]) for g in groups) == n_params
    assert len(generator_param_groups(trainer.generator, 0.001, 1.0)) == 1


def test_gan_start_leaves_the_gan_terms_out_of_the_generator_loss_until_then(pair_data, tmp_path):
    trainer = Trainer(tiny_config(pair_data, tmp_path / "r", "loss.gan_start=2"))
    summary = trainer.fit(max_iterations=3)
    records = [json.loads(x) for x in (tmp_path / "r" / "train_log.jsonl").read_text().splitlines()]
    by_it = {r["iteration"]: r for r in records if "g_l1" in r}
    for it in (1, 2):
        assert by_it[it]["g_gan_pose"] == 0.0 and by_it[it]["g_gan_appearance"] == 0.0
        assert by_it[it]["g_total"] == pytest.approx(10.0 * by_it[it]["g_l1"], rel=1e-5)
    assert by_it[3]["g_gan_pose"] > 0 and summary["iteration"] == 3


def test_body_weighted_l1_reduces_to_l1_and_weights_pixels_near_joints():
    fake, target = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    target[..., 0, 0] = 1.0  # the error sits on the only pixel near a joint
    pose = torch.zeros(1, 18, 2, 2)
    pose[0, 3, 0, 0] = 1.0
    assert body_weighted_l1(fake, target, pose, 0.0).item() == pytest.approx(0.25)
    # weights (1 + 3, 1, 1, 1) -> mean error (4 * 1) / 4 pixels / mean weight 7/4 = 4 / 7
    assert body_weighted_l1(fake, target, pose, 3.0).item() == pytest.approx(4 / 7)


def test_precision_resolves_and_changes_the_forward(pair_data, tmp_path):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == torch.float32
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if cpu_has_bf16() else torch.float32)
    with pytest.raises(ValueError, match="precision='fp16'"):
        resolve_precision("fp16", cpu)
    out = tmp_path / "run"
    Trainer(tiny_config(pair_data, out, "precision=bf16")).fit(max_iterations=1)
    assert load_checkpoint(out / "checkpoint.pt", GENERATOR_FORMAT)["precision"] == "bf16"
    full = load_generator(out / "checkpoint.pt", "cpu", precision="fp32")
    half = load_generator(out / "checkpoint.pt", "cpu", precision="bf16")
    h, w = full.image_size
    g = torch.Generator().manual_seed(0)
    cond = torch.rand(2, 3, h, w, generator=g) * 2 - 1
    kp = torch.stack([torch.randint(0, h, (2, 18), generator=g), torch.randint(0, w, (2, 18), generator=g)], -1)
    a, b = full.generate(cond, kp, kp), half.generate(cond, kp, kp)
    assert half.precision == "bf16" and full.precision == "fp32"
    assert 0 < (a - b).abs().max().item() < 0.1  # bf16 rounding: different, but close


def test_channels_last_sets_the_layout_of_the_models(pair_data, tmp_path):
    on = Trainer(tiny_config(pair_data, tmp_path / "a"))
    off = Trainer(tiny_config(pair_data, tmp_path / "b", "channels_last=false"))
    conv = next(m for m in on.generator.modules() if isinstance(m, torch.nn.Conv2d)).weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    conv = next(m for m in off.generator.modules() if isinstance(m, torch.nn.Conv2d)).weight
    assert conv.is_contiguous()


@pytest.mark.parametrize("preset", ["market1501", "deepfashion"])
def test_paper_presets_keep_the_paper_recipe(preset):
    cfg = load_train_config(f"preset={preset}")
    g, loss, s = cfg.generator, cfg.loss, cfg.schedule
    assert (g.pose_sigma, g.gate_init, g.block_dropout) == (6.0, 0.0, 0.5)
    assert (s.lr, s.gate_lr_mult, loss.gan_start, loss.body_l1_weight) == (2e-4, 1.0, 0, 0.0)
