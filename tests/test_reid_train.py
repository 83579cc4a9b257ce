"""Training and evaluating the re-ID baseline on a tiny SynthMarket: learning beats no learning,
exact resume, checkpoints loadable with weights_only, the CLIs, and clear errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from reid import evaluate as reid_evaluate
from reid import train as reid_train
from reid.evaluate import evaluate_checkpoint, evaluate_model
from reid.market_index import MarketLayoutError
from reid.metrics import SkippedQueryWarning
from reid.train_config import load_reid_config
from reid.trainer import ReidTrainer
from runtime.errors import CheckpointError, MissingWeightsError
from runtime.training import CHECKPOINT_NAME, LOG_NAME

# A quick configuration: the same code path as the presets, with a ResNet-18 trunk at 64 x 32.
# From random initialisation the baseline's lr 0.05 for the head diverges; 0.01 throughout trains.
TINY = ("model.backbone=resnet18", "model.weights=random", "data.image_size=64,32", "data.pad=2",
        "optim.batch_size=16", "optim.backbone_lr_mult=1.0", "optim.lr=0.01", "num_workers=0", "progress=false",
        "precision=fp32")  # auto would be bf16 on some CPUs and fp32 on others


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    from synthmarket import SynthMarketConfig, generate_synthmarket

    root = tmp_path_factory.mktemp("reid") / "synthmarket"
    cfg = SynthMarketConfig(out=str(root), seed=0, n_train_ids=20, n_test_ids=20, n_distractors=20, n_junk=10,
                            height=64, width=32, supersample=1, workers=1, progress=False, test_pairs=10)
    generate_synthmarket(root, cfg)
    return root


def _config(root: Path, out: Path, *extra: str):
    return load_reid_config(f"data.root={root}", f"out={out}", *TINY, *extra)


def _epochs(out: Path) -> dict[int, dict]:
    records = [json.loads(line) for line in (out / LOG_NAME).read_text().splitlines()]
    return {r["epoch"]: r for r in records if r.get("event") == "epoch"}


def test_training_beats_the_untrained_model(synth_root: Path, tmp_path: Path):
    trainer = ReidTrainer(_config(synth_root, tmp_path / "run", "optim.epochs=8", "optim.step_size=6"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedQueryWarning)
        before = evaluate_model(trainer.model, synth_root, (64, 32), progress=False)
        summary = trainer.fit()
        after = evaluate_checkpoint(tmp_path / "run" / CHECKPOINT_NAME, progress=False, device="cpu",
                                    out=tmp_path / "eval.json")
    assert summary["finished"] and summary["epoch"] == 8
    assert after["mAP"] > before["mAP"] + 5, (before["mAP"], after["mAP"])
    assert after["weights_init"] == "random" and after["n_queries"] > 0
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["mAP"] == pytest.approx(after["mAP"]) and {"rank1", "rank5", "rank10"} <= set(saved)
    epochs = _epochs(tmp_path / "run")
    assert sorted(epochs) == list(range(1, 9))
    assert epochs[8]["loss"] < epochs[1]["loss"]
    assert epochs[6]["lr_head"] == pytest.approx(0.01) and epochs[7]["lr_head"] == pytest.approx(0.001)
    assert {"acc", "lr_backbone", "seconds_per_step"} <= set(epochs[1])


def test_resume_after_interruption_reproduces_the_next_epoch(synth_root: Path, tmp_path: Path):
    full = ReidTrainer(_config(synth_root, tmp_path / "full", "optim.epochs=2"))
    full.fit()
    reference = _epochs(tmp_path / "full")[2]["loss"]

    cut = ReidTrainer(_config(synth_root, tmp_path / "cut", "optim.epochs=2"))
    real_step, calls = cut.step, []

    def step_then_crash(batch):
        calls.append(1)
        if len(calls) == cut.steps_per_epoch + 2:  # two steps into epoch 2
            raise KeyboardInterrupt
        return real_step(batch)

    cut.step = step_then_crash
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    state = torch.load(tmp_path / "cut" / CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 1 and isinstance(state["last_epoch"]["loss"], float)
    assert isinstance(state["rng"]["python"]["state"][0], int)

    resumed = ReidTrainer(_config(synth_root, tmp_path / "cut", "optim.epochs=2"))
    assert resumed.epoch == 1
    resumed.fit()
    assert _epochs(tmp_path / "cut")[2]["loss"] == pytest.approx(reference, rel=1e-6, abs=1e-7)
    # The interrupted epoch's step records were dropped from the log; the run is finished.
    assert sum(1 for r in _epochs(tmp_path / "cut").values() if r["epoch"] == 2) == 1
    assert ReidTrainer(_config(synth_root, tmp_path / "cut", "optim.epochs=2")).fit()["finished"]

    with pytest.raises(CheckpointError, match=r"another config \(differs in: optim\.lr\)"):
        ReidTrainer(_config(synth_root, tmp_path / "cut", "optim.epochs=2", "optim.lr=0.02"))
    with pytest.raises(CheckpointError, match="resume=true"):
        ReidTrainer(_config(synth_root, tmp_path / "cut", "optim.epochs=2", "resume=false"))


def test_checkpoint_with_another_number_of_classes_evaluates_with_a_note(synth_root: Path, tmp_path: Path):
    # Train on a 3-identity manifest, evaluate on the dataset whose training split has 20 identities.
    from reid.market_index import index_market

    table = index_market(synth_root, splits=("train",), progress=False)
    keep = sorted(table["identity"].unique())[:3]
    manifest = tmp_path / "three_ids.csv"
    table[table["identity"].isin(keep)].to_csv(manifest, index=False)
    cfg = load_reid_config(f"data.manifest={manifest}", "data.root=", f"out={tmp_path / 'run3'}", *TINY,
                           "optim.epochs=1")
    ReidTrainer(cfg).fit()
    with pytest.raises(MarketLayoutError, match="pass root="):
        evaluate_checkpoint(tmp_path / "run3" / CHECKPOINT_NAME, progress=False, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedQueryWarning)
        rng = torch.get_rng_state()
        result = evaluate_checkpoint(tmp_path / "run3" / CHECKPOINT_NAME, synth_root, progress=False,
                                     device="cpu", ap="trapezoid")
    assert torch.equal(rng, torch.get_rng_state())  # evaluating inside a training process changes nothing
    assert result["n_classes"] == 3 and result["ap_definition"] == "trapezoid"
    assert any("3 classes" in n and "20 identities" in n and "fine for evaluation" in n for n in result["notes"])


def test_wrong_inputs_are_clear_errors(synth_root: Path, tmp_path: Path, capsys):
    junk = tmp_path / "junk" / "bounding_box_train"
    junk.mkdir(parents=True)
    for name in ("photo1.jpg", "IMG_0002.jpg"):
        (junk / name).write_bytes(b"")
    with pytest.raises(MarketLayoutError, match="do not parse as Market-1501 names"):
        ReidTrainer(_config(tmp_path / "junk", tmp_path / "r1"))
    assert reid_train.main([f"data.root={tmp_path / 'junk'}", f"out={tmp_path / 'r1'}", *TINY]) == 1
    assert "do not parse" in capsys.readouterr().err
    assert not (tmp_path / "r1" / CHECKPOINT_NAME).exists()

    # ImageNet weights asked for (the default) and absent: an error before anything is trained.
    with pytest.raises(MissingWeightsError, match=r"model\.weights=random"):
        ReidTrainer(load_reid_config(f"data.root={synth_root}", f"out={tmp_path / 'r2'}", "num_workers=0"))
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate_checkpoint(tmp_path / "nothing.pt")


def test_command_lines(synth_root: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli"
    assert reid_train.main([f"data.root={synth_root}", f"out={out}", *TINY, "optim.epochs=1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epoch"] == 1 and summary["weights_init"] == "random"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedQueryWarning)
        assert reid_evaluate.main([f"checkpoint={out / CHECKPOINT_NAME}", "num_workers=0", "progress=false",
                                   "device=cpu"]) == 0
    printed = capsys.readouterr().out
    assert "mAP" in printed and "rank-10" in printed and "init random" in printed
    assert json.loads((out / "evaluation.json").read_text())["weights_init"] == "random"
    with pytest.raises(SystemExit) as exc:
        reid_train.main(["preset=synth", "optim.epochs=zero"])
    assert exc.value.code == 2


def test_presets_and_warmup(synth_root: Path, tmp_path: Path):
    paper = load_reid_config("preset=market1501")
    assert (paper.model.backbone, paper.model.head, paper.model.weights) == ("resnet50", "ft_net", "imagenet")
    assert paper.data.image_size == (256, 128) and paper.data.pad == 10
    o = paper.optim
    assert (o.epochs, o.batch_size, o.lr, o.backbone_lr_mult, o.step_size, o.gamma) == (60, 32, 0.05, 0.1, 40, 0.1)
    assert o.nesterov and o.momentum == 0.9 and o.weight_decay == 5e-4
    assert o.warmup_epochs == 0 and paper.budget == "epochs" and paper.data.sampler == "RandomSampler"
    assert (paper.loss.label_smoothing, paper.loss.triplet_weight, paper.loss.generated_label) == (0.0, 0.0, "hard")
    import yaml

    from reid.train_config import PRESETS_DIR

    stated = yaml.safe_load((PRESETS_DIR / "market1501.yaml").read_text())  # stated in the file, not inherited
    assert stated["model"]["weights"] == "imagenet" and stated["optim"]["epochs"] == 60
    assert (stated["optim"]["lr"], stated["optim"]["backbone_lr_mult"], stated["optim"]["step_size"]) == (0.05, 0.1, 40)
    assert stated["optim"]["batch_size"] == 32 and stated["loss"]["triplet_weight"] == 0.0
    cpu = load_reid_config("preset=synth")
    assert cpu.model.weights == "random" and cpu.model.backbone == "resnet50"

    trainer = ReidTrainer(_config(synth_root, tmp_path / "warm", "optim.warmup_epochs=2"))
    w = 2 * trainer.steps_per_epoch
    assert trainer.warmup_factor() == pytest.approx(0.1 + 0.9 / w)
    trainer.epoch, trainer._steps_in_epoch = 1, trainer.steps_per_epoch - 1
    assert trainer.warmup_factor() == pytest.approx(1.0)


def test_precision_and_channels_last_are_applied_and_recorded(synth_root: Path, tmp_path: Path):
    runs = {}
    for name, extra in (("fp32", ("precision=fp32",)), ("bf16", ("precision=bf16", "channels_last=true"))):
        trainer = ReidTrainer(_config(synth_root, tmp_path / name, "optim.epochs=1", *extra))
        runs[name] = (trainer, trainer.fit())
    (t32, s32), (t16, s16) = runs["fp32"], runs["bf16"]
    assert (s32["precision"], s16["precision"]) == ("fp32", "bf16")
    assert t16.model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not t32.model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    loss32, loss16 = _epochs(tmp_path / "fp32")[1]["loss"], _epochs(tmp_path / "bf16")[1]["loss"]
    assert loss16 != loss32 and loss16 == pytest.approx(loss32, rel=0.05)  # bf16 rounding, same training
    state = torch.load(tmp_path / "bf16" / CHECKPOINT_NAME, weights_only=True)
    assert state["precision"] == "bf16" and state["config"]["channels_last"] is True
    with pytest.raises(CheckpointError, match=r"trained in bf16 and precision=fp32 is fp32 here: pass precision=bf16"):
        ReidTrainer(_config(synth_root, tmp_path / "bf16", "optim.epochs=1", "precision=fp32",
                            "channels_last=true"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedQueryWarning)
        results = {p: evaluate_checkpoint(tmp_path / "bf16" / CHECKPOINT_NAME, progress=False, device="cpu",
                                          precision=p, out="-") for p in ("fp32", "bf16")}
    assert results["bf16"]["precision"] == "bf16" and results["fp32"]["precision"] == "fp32"
    assert results["bf16"]["train_precision"] == "bf16"
    assert results["bf16"]["mAP"] == pytest.approx(results["fp32"]["mAP"], abs=3.0)


def test_iteration_budget_runs_the_steps_of_the_reference_set(synth_root: Path, tmp_path: Path):
    from reid.step_budget import step_schedule

    cfg = load_reid_config("optim.epochs=8", "optim.step_size=6", "optim.warmup_epochs=1", "budget=iterations",
                           "budget_steps=304")  # SynthMarket's full set at batch 32: 38 batches x 8 epochs
    o = step_schedule(cfg, [12] * 20)  # 240 images: 7 batches per pass
    assert (o.steps, o.decay_every, o.warmup_steps, o.per_pass, o.passes) == (304, 228, 38.0, 7, 44)
    assert step_schedule(load_reid_config("optim.epochs=8", "budget_steps=304"), [12] * 20) is None  # epochs
    plain = ReidTrainer(_config(synth_root, tmp_path / "e", "optim.epochs=2"))
    n = len(plain.dataset)
    scaled = ReidTrainer(_config(synth_root, tmp_path / "i", "optim.epochs=2", "budget=iterations",
                                 f"budget_steps={3 * (n // 16) * 2}"))
    assert scaled.budget.passes == 6 and scaled.state_dict()["epochs"] == 6 and plain.optim.epochs == 2
