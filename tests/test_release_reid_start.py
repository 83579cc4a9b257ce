"""A released re-ID start (python -m reid.release): the trunk of a finished training in fp16, verified
by sha256 before use, loadable as model.weights=released:NAME, fingerprinted by content in the pipeline,
and refused with one line when absent, altered, unfinished or of another kind."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from pipelines.config import load_pipeline_config
from pipelines.stages import train_reid as train_reid_stage
from pipelines.validate import check_config
from reid.model import ModelConfig, build_model
from reid.release import LOG, WEIGHTS, make_release, training_seconds
from reid.release import main as release_main
from reid.train_config import load_reid_config
from reid.trainer import ReidTrainer
from runtime.checkpoint import file_sha256
from runtime.errors import CheckpointError
from runtime.releases import MANIFEST, ROOT_ENV, ReleaseError
from runtime.training import CHECKPOINT_NAME

TINY = ("model.backbone=resnet18", "model.weights=random", "model.head=bnneck", "data.image_size=64,32",
        "data.pad=2", "optim.batch_size=16", "optim.lr=0.01", "num_workers=0", "progress=false", "precision=fp32")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset root, the checkpoint of a finished 1-epoch ResNet-18 training on it)."""
    from synthmarket import SynthMarketConfig, generate_synthmarket

    base = tmp_path_factory.mktemp("start")
    root = base / "synthmarket"
    generate_synthmarket(root, SynthMarketConfig(out=str(root), seed=0, n_train_ids=12, n_test_ids=6, n_distractors=4,
                                                 n_junk=2, height=64, width=32, supersample=1, workers=1,
                                                 progress=False, test_pairs=4))
    ReidTrainer(load_reid_config(f"data.root={root}", f"out={base / 'run'}", *TINY, "optim.epochs=1")).fit()
    return root, base / "run" / CHECKPOINT_NAME


def _trunk(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.backbone.state_dict().items() if not k.startswith("fc.")}


def test_release_holds_the_fp16_trunk_and_loads_as_the_start(trained, tmp_path, monkeypatch, capsys):
    root, ckpt = trained
    releases = tmp_path / "releases"
    assert release_main(["--checkpoint", str(ckpt), "--name", "tiny-start", "--root", str(releases),
                         "--command", "python -m reid.train ..."]) == 0
    assert "reid.model.weights=released:tiny-start" in capsys.readouterr().out
    folder = releases / "tiny-start"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["sha256"] == file_sha256(folder / WEIGHTS) and manifest["format"] == "reid-trunk-release"
    assert manifest["backbone"] == "resnet18" and manifest["n_classes"] == 12 and manifest["epochs"] == 1
    assert manifest["last_epoch"]["epoch"] == 1 and manifest["files"][LOG]["bytes"] > 0
    assert manifest["seconds"] == pytest.approx(manifest["last_epoch"]["seconds"], abs=0.05)  # one epoch's time
    assert manifest["command"] == "python -m reid.train ..." and manifest["stage"] is None  # not from a stage cache

    source = torch.load(ckpt, map_location="cpu", weights_only=True)["model"]
    expected = {k[len("backbone."):]: v for k, v in source.items() if k.startswith("backbone.")}
    released = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)["trunk"]
    assert set(released) == set(expected)
    assert all(v.dtype == torch.float16 for v in released.values() if v.is_floating_point())
    assert released["bn1.num_batches_tracked"].dtype == torch.int64  # counters stay integers

    monkeypatch.setenv(ROOT_ENV, str(releases))
    model, note = build_model(ModelConfig(head="bnneck", backbone="resnet18", weights="released:tiny-start"), 5)
    assert note.startswith("released:tiny-start: ") and manifest["sha256"][:12] in note
    for key, value in _trunk(model).items():  # the checkpoint's trunk, rounded to fp16 once
        want = expected[key].half().to(value.dtype) if value.is_floating_point() else expected[key]
        assert torch.equal(value, want), key
    # a fine-tune starts from it like from any start
    summary = ReidTrainer(load_reid_config(f"data.root={root}", f"out={tmp_path / 'ft'}", *TINY, "optim.epochs=1",
                                           "model.weights=released:tiny-start")).fit()
    assert summary["finished"]


def test_what_is_not_a_finished_re_id_start_is_refused(trained, tmp_path, monkeypatch):
    _, ckpt = trained
    releases = tmp_path / "releases"
    make_release(ckpt, "tiny-start", releases)
    with pytest.raises(FileExistsError, match="--replace"):
        make_release(ckpt, "tiny-start", releases)
    assert make_release(ckpt, "tiny-start", releases, replace=True).name == "tiny-start"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    torch.save({**state, "finished": False}, tmp_path / "unfinished.pt")
    with pytest.raises(CheckpointError, match="unfinished training"):
        make_release(tmp_path / "unfinished.pt", "half", releases)
    assert not (releases / "half").exists() and not list(releases.glob(".half*"))  # nothing half-written

    monkeypatch.setenv(ROOT_ENV, str(releases))
    with pytest.raises(ReleaseError, match=r"resnet18 trunk, and model\.backbone=resnet50"):
        build_model(ModelConfig(head="bnneck", backbone="resnet50", weights="released:tiny-start"), 5)
    with pytest.raises(ReleaseError, match="no released weights named 'absent'"):
        build_model(ModelConfig(head="bnneck", backbone="resnet18", weights="released:absent"), 5)
    generator = releases / "a-generator"  # a release of another kind
    generator.mkdir()
    (generator / "generator.pt").write_bytes(b"x")
    (generator / MANIFEST).write_text(json.dumps({"file": "generator.pt", "sha256": file_sha256(generator / "generator.pt"),
                                                  "bytes": 1, "format": "pona-generator-release"}))
    with pytest.raises(ReleaseError, match="not a re-ID start"):
        build_model(ModelConfig(head="bnneck", backbone="resnet18", weights="released:a-generator"), 5)
    weights = releases / "tiny-start" / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed, same size
    weights.write_bytes(bytes(data))
    with pytest.raises(ReleaseError, match="altered"):
        build_model(ModelConfig(head="bnneck", backbone="resnet18", weights="released:tiny-start"), 5)


def test_the_pipeline_checks_the_start_first_and_fingerprints_its_content(trained, tmp_path, monkeypatch):
    _, ckpt = trained
    releases = tmp_path / "releases"
    make_release(ckpt, "tiny-start", releases)
    monkeypatch.setenv(ROOT_ENV, str(releases))
    cfg = load_pipeline_config("preset=smoke", f"out={tmp_path / 'runs'}", "reid.model.weights=released:tiny-start",
                               "reid.model.backbone=resnet18")
    check_config(cfg)
    key = train_reid_stage.settings(cfg).fingerprint()
    assert key["reid"]["model"]["weights_sha256"] == file_sha256(releases / "tiny-start" / WEIGHTS)
    make_release(ckpt, "tiny-start", releases, replace=True)  # same weights, same name: same fingerprint
    assert train_reid_stage.settings(cfg).fingerprint() == key
    other = dataclasses.replace(cfg, reid=dataclasses.replace(cfg.reid, model=dataclasses.replace(
        cfg.reid.model, weights="released:absent")))
    with pytest.raises(ReleaseError, match="no released weights named 'absent'"):
        check_config(other)  # before any stage
    path = dataclasses.replace(cfg, reid=dataclasses.replace(cfg.reid, model=dataclasses.replace(
        cfg.reid.model, weights=str(tmp_path / "nope.pt"))))
    with pytest.raises(FileNotFoundError, match=r"reid\.model\.weights="):
        check_config(path)


def test_training_time_is_the_sum_of_the_epochs_an_epoch_redone_after_a_resume_once(tmp_path):
    log = tmp_path / "train_log.jsonl"
    records = [{"event": "start"}, {"epoch": 1, "step": 20, "seconds": 10.0},
               {"event": "epoch", "epoch": 1, "seconds": 12.5}, {"epoch": 2, "step": 40, "seconds": 20.0},
               {"event": "epoch", "epoch": 2, "seconds": 99.0}, {"event": "start"}, {"event": "epoch", "epoch": 2, "seconds": 14.0}, {"event": "epoch", "epoch": 3, "seconds": 13.0}]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    assert training_seconds(log) == 39.5


def test_the_committed_view_start_verifies_and_fits_the_regime_preset(monkeypatch):
    from reid.model import released_start

    monkeypatch.delenv(ROOT_ENV, raising=False)
    cfg = load_pipeline_config("preset=regime", "reid.model.weights=released:view-start-synth")
    path = released_start(cfg.reid.model.weights, cfg.reid.model.backbone).path
    manifest = json.loads((path.parent / MANIFEST).read_text())
    assert manifest["image_size"] == list(cfg.reid.data.image_size) and manifest["n_classes"] == cfg.auxiliary.n_ids
    assert manifest["stage"]["inputs"]["subset"] == {"images": cfg.pretrain.images, "per_id": cfg.pretrain.per_id}
    assert manifest["epochs"] == cfg.pretrain.epochs  # the preset's own pretraining, released
