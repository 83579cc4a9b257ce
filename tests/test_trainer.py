"""The training loop: exact resume, divergence stop, weights policy, checkpoint errors, schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pona_model.checkpoint_tags import GENERATOR_FORMAT
from pona_model.losses import PerceptualLoss
from pona_model.train_config import PRESETS_DIR, TrainConfig, load_train_config
from pona_model.trainer import IterationBatches, Trainer, linear_decay
from runtime.checkpoint import load_checkpoint
from runtime.errors import CheckpointError, MissingWeightsError, TrainingDiverged
from runtime.training import CHECKPOINT_NAME, LOG_NAME
from tests.conftest import TINY_TRAIN

TINY = TINY_TRAIN


def tiny_config(data: Path, out: Path, *extra: str) -> TrainConfig:
    return load_train_config(*TINY, f"data.root={data}", f"out={out}", *extra)


def losses_by_iteration(out: Path) -> dict[int, dict]:
    records = [json.loads(line) for line in (out / LOG_NAME).read_text().splitlines()]
    return {r["iteration"]: r for r in records if "g_l1" in r}


def test_interrupted_and_resumed_run_reproduces_the_uninterrupted_losses(pair_data, tmp_path):
    straight = tmp_path / "straight"
    Trainer(tiny_config(pair_data, straight)).fit(max_iterations=6)
    pieces = tmp_path / "pieces"
    Trainer(tiny_config(pair_data, pieces)).fit(max_iterations=3)
    assert load_checkpoint(pieces / CHECKPOINT_NAME, GENERATOR_FORMAT)["iteration"] == 3
    Trainer(tiny_config(pair_data, pieces)).fit(max_iterations=3)  # a fresh process would do the same
    a, b = losses_by_iteration(straight), losses_by_iteration(pieces)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6]
    keys = ("g_total", "g_l1", "g_gan_pose", "g_gan_appearance", "d_appearance", "d_pose", "lr")
    for it in range(1, 7):
        for k in keys:
            assert a[it][k] == pytest.approx(b[it][k], rel=1e-6, abs=1e-7), (it, k)


def test_run_finishes_the_schedule_and_writes_samples_and_config(pair_data, tmp_path):
    out = tmp_path / "run"
    summary = Trainer(tiny_config(pair_data, out)).fit()
    assert summary["finished"] and summary["iteration"] == 8  # (1 + 1) epochs * 8 pairs / batch 2
    state = load_checkpoint(out / CHECKPOINT_NAME, GENERATOR_FORMAT)
    assert state["perceptual"].startswith("disabled")
    assert json.loads((out / "config.json").read_text())["generator"]["ngf"] == 8
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["iter_0000004.png", "iter_0000008.png"]
    start = json.loads((out / LOG_NAME).read_text().splitlines()[0])
    assert start["event"] == "start" and start["perceptual"].startswith("disabled")
    # a rerun of a finished run resumes at the end and trains nothing more
    again = Trainer(tiny_config(pair_data, out)).fit()
    assert again["iteration"] == 8 and again["losses"] == {}


def test_nan_loss_stops_with_the_iteration_number(pair_data, tmp_path):
    trainer = Trainer(tiny_config(pair_data, tmp_path / "run"))
    with torch.no_grad():
        next(trainer.generator.decoder.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"iteration 1: non-finite loss"):
        trainer.fit(max_iterations=2)


def test_missing_vgg_weights_stop_with_where_to_put_them(pair_data, tmp_path):
    with pytest.raises(MissingWeightsError, match=r"vgg19-dcbb9e9d\.pth.*loss\.vgg_missing=disable"):
        Trainer(tiny_config(pair_data, tmp_path / "run", "loss.vgg_missing=error"))
    with pytest.raises(MissingWeightsError, match="does not exist"):
        Trainer(tiny_config(pair_data, tmp_path / "run", "loss.vgg_weights=/nonexistent/vgg.pth"))


def test_perceptual_loss_uses_a_local_vgg_file(pair_data, tmp_path):
    torch.manual_seed(0)
    fake_vgg = {"features.0.weight": torch.randn(64, 3, 3, 3), "features.0.bias": torch.zeros(64),
                "features.2.weight": torch.randn(64, 64, 3, 3) * 0.05, "features.2.bias": torch.zeros(64)}
    path = tmp_path / "vgg.pth"
    torch.save(fake_vgg, path)
    loss = PerceptualLoss(path)
    x = torch.rand(2, 3, 16, 8) * 2 - 1
    assert loss(x, x).item() == 0.0
    assert loss(x, -x).item() > 0
    trainer = Trainer(tiny_config(pair_data, tmp_path / "run", f"loss.vgg_weights={path}", "loss.vgg_missing=error"))
    assert trainer.perceptual_note == f"VGG-19 relu1_2 from {path}"
    assert trainer.step(next(iter(torch.utils.data.DataLoader(trainer._dataset(
        "bounding_box_train", "market-annotation-train.csv", "market-pairs-train.csv"), batch_size=2))))[
        "g_perceptual"] > 0


def test_corrupt_foreign_and_mismatched_checkpoints_are_named(pair_data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT_NAME).write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt is not a readable checkpoint"):
        Trainer(tiny_config(pair_data, out)).fit(max_iterations=1)
    torch.save({"state_dict": {}}, out / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match="is not a pona-generator-training checkpoint"):
        Trainer(tiny_config(pair_data, out)).fit(max_iterations=1)
    (out / CHECKPOINT_NAME).unlink()
    Trainer(tiny_config(pair_data, out)).fit(max_iterations=1)
    with pytest.raises(CheckpointError, match=r"another config \(differs in: generator\.ngf\)"):
        Trainer(tiny_config(pair_data, out, "generator.ngf=4")).fit(max_iterations=1)
    with pytest.raises(CheckpointError, match="resume=true"):
        Trainer(tiny_config(pair_data, out, "resume=false")).fit(max_iterations=1)


def test_missing_data_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data\.images = .*python -m synthmarket"):
        Trainer(tiny_config(tmp_path / "nowhere", tmp_path / "run"))


def test_schedule_is_constant_then_linear_to_zero():
    f = linear_decay(iterations_per_epoch=10, n_epochs=2, n_epochs_decay=3)
    # the authors' off-by-one: decay starts in epoch index 1 (the last of the 2 "constant" epochs)
    assert [f(i) for i in (0, 9, 10, 19)] == [1.0, 1.0, 0.75, 0.75]
    assert [f(i) for i in (20, 30, 40, 49, 60)] == [0.5, 0.25, 0.0, 0.0, 0.0]  # never negative
    assert load_train_config("preset=market1501").schedule.iterations() == 87_500


def test_batches_depend_only_on_seed_and_iteration():
    whole = list(IterationBatches(50, 4, seed=3, start=0, total=6))
    tail = list(IterationBatches(50, 4, seed=3, start=4, total=6))
    assert tail == whole[4:] and len(whole) == 6
    assert list(IterationBatches(50, 4, seed=4, start=0, total=6)) != whole


def test_presets_hold_the_papers_settings():
    market = load_train_config("preset=market1501")
    assert (market.loss.gan_mode, market.loss.lambda_gan, market.loss.lambda_l1, market.loss.lambda_perceptual) == (
        "bce", 5.0, 10.0, 10.0)
    assert (market.schedule.batch_size, market.schedule.pool_size, market.generator.norm) == (32, 50, "batch")
    fashion = load_train_config("preset=deepfashion")
    assert (fashion.loss.gan_mode, fashion.loss.lambda_l1, fashion.schedule.batch_size,
            fashion.schedule.pool_size, fashion.generator.image_size, fashion.generator.norm) == (
        "lsgan", 1.0, 7, 0, (256, 176), "instance")
    assert {p.stem for p in PRESETS_DIR.glob("*.yaml")} >= {"market1501", "deepfashion", "synth"}
