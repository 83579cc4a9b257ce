"""The training engine (runtime.training): a run killed or interrupted anywhere resumes to the weights an
uninterrupted run reaches, bit for bit on CPU with one thread, for the re-ID trainer (mid-epoch) and the
generator; and both trainers refuse a resume with the same one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from pona_model.train_config import load_train_config
from pona_model.trainer import Trainer
from reid.train_config import load_reid_config
from reid.trainer import ReidTrainer
from runtime.errors import CheckpointError
from runtime.training import CHECKPOINT_NAME, LOG_NAME
from tests.conftest import TINY_TRAIN, tiny_synthmarket

# A tiny re-ID run on the pipeline's sampler (P x K = 4 x 2) with random erasing, so the data order draws
# from torch's, Python's and NumPy's generators: 8 batches per epoch, 2 epochs.
REID = ("model.backbone=resnet18", "model.weights=random", "data.image_size=32,16", "data.pad=1",
        "data.erasing_p=0.5", "data.sampler=RandomIdentitySampler", "data.num_instances=2", "optim.batch_size=8",
        "optim.epochs=2", "optim.step_size=1", "optim.warmup_epochs=0.5", "optim.lr=0.01",
        "optim.backbone_lr_mult=1.0", "num_workers=0", "progress=false", "precision=fp32", "threads=1",
        "log_every=1")
STEPS_PER_EPOCH, EPOCHS = 8, 2


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return tiny_synthmarket(tmp_path_factory.mktemp("engine") / "synthmarket", n_train_ids=6)


def reid_config(root: Path, out: Path, *extra: str):
    return load_reid_config(f"data.root={root}", f"out={out}", *REID, *extra)


@pytest.fixture(scope="module")
def straight(synth: Path, tmp_path_factory) -> dict:
    """The uninterrupted run: its final checkpoint and log."""
    out = tmp_path_factory.mktemp("straight")
    torch.set_num_threads(1)
    summary = ReidTrainer(reid_config(synth, out, "checkpoint_every=0")).fit()
    assert summary["optimizer_steps"] == STEPS_PER_EPOCH * EPOCHS and summary["finished"]
    return {"out": out, "state": torch.load(out / CHECKPOINT_NAME, weights_only=True), "log": records(out)}


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG_NAME).read_text().splitlines()]


def assert_same_run(out: Path, straight: dict) -> None:
    """Bit-identical weights and optimiser state, the same epoch records and every step logged once."""
    state = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    ref = straight["state"]
    assert state["optimizer_steps"] == ref["optimizer_steps"] and state["finished"]
    assert all(torch.equal(state["model"][k], ref["model"][k]) for k in ref["model"]), "weights differ"
    momenta = [(a["momentum_buffer"], b["momentum_buffer"]) for a, b in
               zip(state["optimizer"]["state"].values(), ref["optimizer"]["state"].values())]
    assert momenta and all(torch.equal(a, b) for a, b in momenta)
    mine, theirs = records(out), straight["log"]

    def epochs(rs: list[dict]) -> list[tuple]:
        return [(r["epoch"], r["loss"], r["acc"], r["steps"]) for r in rs if r.get("event") == "epoch"]

    assert epochs(mine) == epochs(theirs)
    steps = [(r["optimizer_steps"], r["loss"]) for r in mine if "step" in r]
    assert steps == [(r["optimizer_steps"], r["loss"]) for r in theirs if "step" in r]


def test_a_reid_run_killed_mid_epoch_resumes_from_its_last_checkpoint_to_the_same_weights(synth, straight, tmp_path):
    """Defect: re-ID training saved only at an epoch's end, so a kill mid-epoch lost the epoch."""
    out = tmp_path / "cut"
    cut = ReidTrainer(reid_config(synth, out, "checkpoint_every=3"))
    real_step, calls = cut.step, []

    def killed_at_13(batch):
        calls.append(1)
        if len(calls) == 13:  # killed during step 13; the last periodic checkpoint is at step 12
            raise RuntimeError("killed")
        return real_step(batch)

    cut.step = killed_at_13
    with pytest.raises(RuntimeError, match="killed"):
        cut.fit()
    # resumed in a fresh trainer, with a loader worker this time: the pixels do not depend on workers
    resumed = ReidTrainer(reid_config(synth, out, "checkpoint_every=3", "num_workers=1"))
    assert (resumed.epoch, resumed._steps_in_epoch, resumed.optimizer_steps) == (1, 12 - STEPS_PER_EPOCH, 12)
    resumed.fit()
    assert_same_run(out, straight)


def test_ctrl_c_mid_epoch_saves_that_step_and_the_rerun_finishes_identically(synth, straight, tmp_path):
    out = tmp_path / "ctrl_c"
    cfg = reid_config(synth, out, "checkpoint_every=0")
    trainer = ReidTrainer(cfg)
    real_step, calls = trainer.step, []

    def step(batch):
        calls.append(1)
        result = real_step(batch)
        if len(calls) == 11:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during step 11, the third of epoch 2
        return result

    trainer.step = step
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match=r"^stopped at step 11; checkpoint .*checkpoint\.pt$"):
        trainer.fit()
    assert signal.getsignal(signal.SIGINT) is before
    state = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    assert (state["epoch"], state["steps_in_epoch"], state["optimizer_steps"]) == (1, 3, 11)
    ReidTrainer(cfg).fit()
    assert_same_run(out, straight)


def test_the_generator_resumes_from_a_periodic_checkpoint_to_the_same_weights(pair_data, tmp_path):
    def config(out: Path, *extra: str):
        return load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={out}", "precision=fp32",
                                 "checkpoint_every=3", *extra)

    Trainer(config(tmp_path / "straight")).fit()
    cut = Trainer(config(tmp_path / "cut"))
    real_step, calls = cut.step, []

    def killed_at_6(batch):
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("killed")
        return real_step(batch)

    cut.step = killed_at_6
    with pytest.raises(RuntimeError, match="killed"):
        cut.fit()
    resumed = Trainer(config(tmp_path / "cut"))
    assert resumed.fit()["iteration"] == resumed.total_iterations == 8
    a, b = (torch.load(tmp_path / name / CHECKPOINT_NAME, weights_only=True) for name in ("straight", "cut"))
    for net in ("generator", "d_pose", "d_appearance"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


def test_both_trainers_refuse_a_resume_with_the_same_one_line_errors(synth, straight, pair_data, tmp_path):
    # the re-ID run: a copy of the finished one (the checks come before anything is written)
    reid_out = tmp_path / "reid"
    shutil.copytree(straight["out"], reid_out)
    gan_out = tmp_path / "gan"
    gan_args = (*TINY_TRAIN, f"data.root={pair_data}", f"out={gan_out}", "precision=fp32")
    Trainer(load_train_config(*gan_args)).fit(max_iterations=1)

    def reid_error(*extra: str) -> str:
        with pytest.raises(CheckpointError) as exc:
            ReidTrainer(reid_config(synth, reid_out, *extra))
        return str(exc.value).replace(str(reid_out), "<run>")

    def gan_error(*extra: str) -> str:
        with pytest.raises(CheckpointError) as exc:
            Trainer(load_train_config(*gan_args, *extra)).fit(max_iterations=1)
        return str(exc.value).replace(str(gan_out), "<run>")

    for extra in (("resume=false",), ("seed=1",)):
        assert reid_error(*extra) == gan_error(*extra), extra
    assert gan_error("resume=false") == ("<run>/checkpoint.pt exists; pass resume=true to continue it, or choose "
                                         "another out=")
    assert gan_error("seed=1") == ("<run>/checkpoint.pt was written with another config (differs in: seed). Use "
                                   "another out= for the new config, or delete <run> to start over.")
    # one precision rule: the precision the checkpoint was trained in, whatever the keys say
    for out in (reid_out, gan_out):
        state = torch.load(out / CHECKPOINT_NAME, weights_only=True)
        torch.save({**state, "precision": "bf16"}, out / CHECKPOINT_NAME)
    assert reid_error() == gan_error() == (
        "<run>/checkpoint.pt was trained in bf16 and precision=fp32 is fp32 here: pass precision=bf16 to resume "
        "it, or use another out=.")
    assert all("\n" not in e for e in (reid_error(), gan_error(), reid_error("seed=1"), gan_error("resume=false")))


def test_ctrl_c_during_the_final_save_stops_the_caller(pair_data, tmp_path):
    """Defect: a Ctrl-C that arrived while the last checkpoint was written (after the loop) was held and then
    dropped, so ``fit`` returned a success and a pipeline went on to its next stage."""
    out = tmp_path / "final_save"
    cfg = load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={out}", "precision=fp32",
                            "checkpoint_every=0")
    trainer = Trainer(cfg)
    real_save = trainer.run.save

    def save(t):
        path = real_save(t)
        if t.position == trainer.total_iterations:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the final checkpoint is being written
        return path

    trainer.run.save = save
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match=r"^stopped at iteration 8; checkpoint .*checkpoint\.pt$"):
        trainer.fit()
    assert signal.getsignal(signal.SIGINT) is before
    assert torch.load(out / CHECKPOINT_NAME, weights_only=True)["iteration"] == 8  # the save itself completed
    assert Trainer(cfg).fit()["finished"]  # the rerun resumes at the end and finishes without training again
