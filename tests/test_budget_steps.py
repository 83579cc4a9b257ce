"""``reid.budget=iterations`` counts optimiser steps as the training loader yields them: none, copy,
pona and full all get the full set's steps exactly, although torchreid's identity sampler pads every
identity of a reduced set to ``num_instances`` images (which image-count scaling missed)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from augment import merge_training_set, plan_synthesis, select_conditions, subsample
from poseformats.annotations import read_annotations
from reid.market_index import index_market
from reid.step_budget import budget_steps, folder_counts, identity_counts, loader_batches, step_schedule
from reid.train_config import current_keys, load_reid_config
from reid.trainer import ReidTrainer, config_from_checkpoint
from runtime.errors import CheckpointError
from runtime.training import CHECKPOINT_NAME, LOG_NAME
from tests.conftest import tiny_synthmarket

# The synth preset's sampling and schedule (P x K = 4 x 4 here, batch 16): 3 epochs, x0.1 after 2, warm-up 0.5.
SCHEDULE = ("data.sampler=RandomIdentitySampler", "data.num_instances=4", "optim.batch_size=16", "optim.epochs=3",
            "optim.step_size=2", "optim.warmup_epochs=0.5")
TINY = ("model.backbone=resnet18", "model.weights=random", "data.image_size=64,32", "data.pad=2",
        "optim.backbone_lr_mult=1.0", "optim.lr=0.01", "num_workers=0", "progress=false", "precision=fp32",
        "log_every=1")

# Images per identity (12 identities, in identity order) and, by hand, the identity sampler's batches
# per pass: identity i gives max(1, n_i // 4) chunks, a batch takes 16 / 4 = 4 chunks.
FULL = [9, 12, 17, 5, 10, 4, 19, 14, 6, 17, 11, 24]  # 148 images; chunks 2+3+4+1+2+1+4+3+1+4+2+6 = 33 -> 8
COUNTS = {
    (0.2, "none"): [2, 2, 3, 1, 2, 1, 4, 3, 1, 3, 2, 5],  # 29 images, every identity padded to one chunk: 12 -> 3
    (0.2, "filled"): [9, 12, 16, 5, 9, 4, 18, 13, 6, 16, 11, 24],  # 143 (5 poses unusable): 33 -> 8
    (0.5, "none"): [5, 6, 9, 3, 5, 2, 10, 7, 3, 9, 6, 12],  # 77: 1+1+2+1+1+1+2+1+1+2+1+3 = 17 -> 4
    (0.5, "filled"): [9, 12, 17, 5, 9, 4, 18, 13, 6, 17, 11, 24],  # 145: 33 -> 8
}
PER_PASS = {"none": {0.2: 3, 0.5: 4}, "copy": {0.2: 8, 0.5: 8}, "pona": {0.2: 8, 0.5: 8}, "full": {0.2: 8, 0.5: 8}}
FULL_STEPS = 8 * 3  # the full set's 8 batches per epoch x 3 epochs


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return tiny_synthmarket(tmp_path_factory.mktemp("budget") / "synthmarket", n_train_ids=12)


def training_sets(root: Path, portion: float) -> dict[str, pd.DataFrame]:
    """The training images of each method, as the pipeline's stages choose them: ``none`` the kept
    images; ``pona`` kept + one generated image per missing image with a usable pose, ``copy`` the
    same names with the condition images copied in (augment.copy_control); ``full`` every image."""
    index = index_market(root, splits=("train",), progress=False)
    kept, missing = subsample(index, portion, seed=0)
    keypoints = read_annotations(root / "market-annotation-train.csv")
    plan = plan_synthesis(select_conditions(missing, kept, "random", 0, keypoints=keypoints), keypoints,
                          root / "bounding_box_train", "skip")
    filled = pd.concat([kept, plan[plan["action"] == "generate"]], ignore_index=True)
    return {"none": kept, "copy": filled, "pona": filled, "full": index}


def test_every_method_gets_the_full_sets_steps(synth: Path):
    reid = load_reid_config(*SCHEDULE, "budget=iterations")
    assert folder_counts(synth) == FULL
    assert loader_batches(FULL, reid.data, 16) == 8 and budget_steps(FULL, reid.data, reid.optim) == FULL_STEPS
    budget = load_reid_config(*SCHEDULE, "budget=iterations", f"budget_steps={FULL_STEPS}")
    for portion in (0.2, 0.5):
        for method, table in training_sets(synth, portion).items():
            counts = identity_counts(table["identity"])
            expected = FULL if method == "full" else COUNTS[portion, "none" if method == "none" else "filled"]
            assert counts == expected, (portion, method)
            schedule = step_schedule(budget, counts)
            assert schedule.per_pass == PER_PASS[method][portion], (portion, method)
            # the same steps, decay and warm-up for every method: 24 steps, x0.1 after 16, warm-up over 4
            assert (schedule.steps, schedule.decay_every, schedule.warmup_steps) == (FULL_STEPS, 16, 4.0)
    # the case: 29 images scaled 148 / 29 -> 15 epochs of 3 batches = 45 steps; now 8 passes of 3
    assert step_schedule(budget, COUNTS[0.2, "none"]).passes == 8
    # budget_steps=0: this set's own epochs; budget=epochs: no step schedule (optim per epoch, as the paper)
    assert step_schedule(load_reid_config(*SCHEDULE, "budget=iterations"), FULL).steps == FULL_STEPS
    assert step_schedule(load_reid_config(*SCHEDULE, f"budget_steps={FULL_STEPS}"), FULL) is None


def test_random_sampler_counts_images(synth: Path):
    data = load_reid_config("optim.batch_size=16").data  # RandomSampler, the last incomplete batch dropped
    assert loader_batches(FULL, data, 16) == 148 // 16 == 9
    assert loader_batches(COUNTS[0.2, "none"], data, 16) == 1


def test_the_pipeline_sets_the_full_sets_steps(synth: Path, tmp_path: Path, monkeypatch):
    from pipelines.config import load_pipeline_config
    from pipelines.stages import train_reid

    seen = {}

    class Recorder:
        def __init__(self, config):
            seen[config.data.root] = config

        def fit(self):
            return {"optimizer_steps": 0}

    monkeypatch.setattr(train_reid, "ReidTrainer", Recorder)
    args = ["preset=smoke", *(f"reid.{s}" for s in SCHEDULE)]
    settings = train_reid.settings(load_pipeline_config(*args, "reid.budget=iterations"))
    reduced, full = SimpleNamespace(root="reduced"), SimpleNamespace(root=str(synth))  # the upstream results
    train_reid.run(tmp_path / "none", settings, {"training_set": reduced, "prepare_data": full})
    train_reid.run(tmp_path / "full", settings, {"training_set": full})
    assert seen["reduced"].budget_steps == seen[str(synth)].budget_steps == FULL_STEPS
    train_reid.run(tmp_path / "epochs", train_reid.settings(load_pipeline_config(*args)),
                   {"training_set": SimpleNamespace(root="paper")})
    assert seen["paper"].budget == "epochs" and seen["paper"].budget_steps == 0


def test_epochs_fingerprints_keep_the_retired_key_and_iterations_ones_change():
    from pipelines.config import load_pipeline_config
    from pipelines.stages import train_reid

    epochs = train_reid.settings(load_pipeline_config("preset=smoke")).fingerprint()["reid"]
    assert epochs["budget_images"] == 0 and "budget_steps" not in epochs and "budget_unit" not in epochs
    iterations = train_reid.settings(load_pipeline_config("preset=smoke", "reid.budget=iterations"))
    assert iterations.fingerprint()["reid"]["budget_unit"]


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG_NAME).read_text().splitlines()]


def test_a_reduced_set_trains_exactly_the_full_sets_steps_and_resumes_exactly(synth: Path, tmp_path: Path):
    reduced = tmp_path / "reduced"
    kept = training_sets(synth, 0.2)["none"]
    merge_training_set(kept, None, synth, reduced)
    # 2 epochs of the full set: 8 x 2 = 16 steps, x0.1 after 8, warm-up over 4; the reduced set's
    # passes yield 3 batches each: 5 passes and a last one of 1 step.
    args = (f"data.root={reduced}", *TINY, *SCHEDULE, "optim.epochs=2", "optim.step_size=1", "budget=iterations",
            f"budget_steps={8 * 2}")
    whole = ReidTrainer(load_reid_config(*args, f"out={tmp_path / 'whole'}"))
    summary = whole.fit()
    assert summary["finished"] and summary["optimizer_steps"] == 16 and summary["epoch"] == 6
    records = _log(tmp_path / "whole")
    epochs = [r for r in records if r.get("event") == "epoch"]
    assert [r["steps"] for r in epochs] == [3, 3, 3, 3, 3, 1] and epochs[-1]["optimizer_steps"] == 16
    steps = [r for r in records if "step" in r]
    assert [r["step"] for r in steps] == list(range(1, 17))
    assert all(r["lr_head"] == pytest.approx(0.01) for r in steps[:8])  # the decay at half of training,
    assert all(r["lr_head"] == pytest.approx(0.001) for r in steps[8:])  # as the full set's after epoch 1 of 2
    state = torch.load(tmp_path / "whole" / CHECKPOINT_NAME, weights_only=True)
    assert state["optimizer_steps"] == 16 and state["finished"] and state["epochs"] == 6

    cut = ReidTrainer(load_reid_config(*args, f"out={tmp_path / 'cut'}"))
    assert cut.fit(max_epochs=2)["optimizer_steps"] == 6
    resumed = ReidTrainer(load_reid_config(*args, f"out={tmp_path / 'cut'}"))
    assert (resumed.epoch, resumed.optimizer_steps) == (2, 6)
    assert resumed.fit()["optimizer_steps"] == 16
    after = torch.load(tmp_path / "cut" / CHECKPOINT_NAME, weights_only=True)
    assert all(torch.equal(after["model"][k], state["model"][k]) for k in state["model"])

    # a checkpoint of the image-scaled budget loads for evaluation, but is not continued under steps
    old = {**state, "config": {**current_keys(state["config"]), "budget_images": 740}}
    del old["config"]["budget_steps"]
    assert config_from_checkpoint(old).budget_steps == 0
    torch.save(old, tmp_path / "cut" / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match="budget_images=740"):
        ReidTrainer(load_reid_config(*args, f"out={tmp_path / 'cut'}"))


def test_results_json_and_the_sweep_table_carry_each_methods_steps(tmp_path: Path):
    from pipelines.config import load_pipeline_config
    from pipelines.report import run_results
    from pipelines.stage_cache import StageResult
    from pipelines.stages import evaluate_reid, train_reid
    from pipelines.stages import subsample as subsample_stage
    from pipelines.sweep import results_table

    cfg = load_pipeline_config("preset=smoke", "methods=none,copy,pona,full", "reid.budget=iterations")

    def stage(name: str, result: object) -> tuple[str, StageResult]:
        return name, StageResult(name, "0" * 16, tmp_path, result, 1.0, False)

    trained = train_reid.Result(checkpoint="", root="", start="random", summary={"optimizer_steps": FULL_STEPS})
    results = dict([stage("subsample", subsample_stage.Result(kept="", missing="", n_kept=29, n_missing=119,
                                                         n_identities=12))]
                   + [stage(f"evaluate_reid[{m}]", evaluate_reid.Result(mAP=50.0, rank1=60.0)) for m in cfg.methods]
                   + [stage(f"train_reid[{m}]", trained) for m in cfg.methods])
    report = run_results(cfg, {}, results)
    assert {m: v["optimizer_steps"] for m, v in report["methods"].items()} == dict.fromkeys(cfg.methods, FULL_STEPS)
    table = results_table([{**report, "reid_budget": "iterations"}])
    assert table["optimizer_steps"].tolist() == [FULL_STEPS] * 4
