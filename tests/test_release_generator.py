"""Released generators: ``python -m pona_model.release`` makes a release from a training checkpoint
(generator weights only, fp16), ``load_generator`` reads it back in fp32 after verifying it, and the
pipeline takes ``generator.checkpoint=released[:name]``: checked before any stage, fingerprinted by
its sha256 alone, recorded in results.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.config import load_pipeline_config
from pipelines.graph import build_stages
from pipelines.run import main as run_main
from pipelines.run import run_pipeline
from pipelines.stage_cache import DONE
from pona_model.checkpoint_tags import GENERATOR_FORMAT, GENERATOR_RELEASE_FORMAT
from pona_model.generator import GeneratorConfig
from pona_model.inference import load_generator
from pona_model.models import build_generator
from pona_model.release import WEIGHTS, last_metrics, make_release
from pona_model.release import main as release_main
from pona_model.train_config import TrainConfig, load_train_config
from pona_model.trainer import Trainer
from runtime.checkpoint import FORMAT_VERSION, file_sha256, save_checkpoint
from runtime.config import to_dict
from runtime.release_writer import training_seconds
from runtime.releases import MANIFEST, ROOT_ENV, ReleaseError, verify_release
from runtime.training import CHECKPOINT_NAME
from tests.conftest import TINY_TRAIN, _person_keypoints, make_pair_data

# fp16 keeps 11 significant bits: a normal value is rounded by at most 2**-11 of itself, and one in
# fp16's subnormal range (below 2**-14) by at most half its spacing, 2**-25.
FP16_RELATIVE, FP16_ABSOLUTE = 2.0**-11, 2.0**-25
# Outputs lie in [-1, 1]; one uint8 grey level is 2 / 255 = 7.8e-3 there. The tiny generator's outputs
# move by 2.6e-5 at most from the rounding (measured); the bound allows 40 times that and stays below
# half a grey level, so images written from the release differ from the checkpoint's by at most one level.
OUTPUT_BOUND = 1e-3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The tiny config of tests/conftest.py after 2 iterations (with its train_log.jsonl beside it)."""
    tmp = tmp_path_factory.mktemp("release_ckpt")
    data = make_pair_data(tmp / "data")
    torch.set_num_threads(1)
    Trainer(load_train_config(*TINY_TRAIN, f"data.root={data}", f"out={tmp / 'run'}")).fit(max_iterations=2)
    return tmp / "run" / CHECKPOINT_NAME


@pytest.fixture(scope="module")
def releases(checkpoint: Path, tmp_path_factory) -> Path:
    """A releases folder holding ``tiny``, made from ``checkpoint``."""
    root = tmp_path_factory.mktemp("releases")
    make_release(checkpoint, "tiny", root, command="python -m pona_model.train (tests/conftest.py TINY_TRAIN)")
    return root


def _inputs(n: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    cond = torch.as_tensor(rng.uniform(-1, 1, (n, 3, 32, 16)), dtype=torch.float32)
    kc = torch.as_tensor(np.stack([_person_keypoints(rng, 32, 16) for _ in range(n)])).long()
    kt = torch.as_tensor(np.stack([_person_keypoints(rng, 32, 16) for _ in range(n)])).long()
    return cond, kc, kt


def _altered_copy(releases: Path, tmp_path: Path) -> Path:
    """A copy of the releases folder whose ``tiny`` weights have one byte flipped."""
    root = tmp_path / "altered"
    shutil.copytree(releases, root)
    weights = root / "tiny" / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    return root


# ----------------------------------------------------------------------------- making a release


def test_a_release_holds_the_generator_only_in_fp16_with_what_rebuilds_it(checkpoint, releases):
    release = verify_release("tiny", releases)
    state = torch.load(release.path, weights_only=True)
    trained = torch.load(checkpoint, weights_only=True)
    assert state["format"] == GENERATOR_RELEASE_FORMAT and state["version"] == FORMAT_VERSION
    assert not {"d_pose", "d_appearance", "opt_g", "opt_d_pose", "schedulers", "rng", "pool_pose"} & set(state)
    assert state["config"] == trained["config"] and state["iteration"] == 2 and state["dtype"] == "float16"
    assert set(state["generator"]) == set(trained["generator"])
    for key, value in state["generator"].items():
        want = torch.float16 if trained["generator"][key].is_floating_point() else trained["generator"][key].dtype
        assert value.dtype == want, key  # running stats too; num_batches_tracked stays int64
    fp32_bytes = sum(v.numel() * 4 for v in trained["generator"].values() if v.is_floating_point())
    m = release.manifest
    assert m["bytes"] < 0.6 * fp32_bytes  # half the weight bytes, plus the archive's small overhead
    assert (m["format"], m["dtype"], m["arch"], m["image_size"], m["iterations"]) == (
        GENERATOR_RELEASE_FORMAT, "float16", "pona", [32, 16], 2)
    assert m["total_iterations"] == 8 and m["finished"] is False and m["precision"] == trained["precision"]
    assert m["perceptual"] == trained["perceptual"] and m["config"] == trained["config"]
    assert m["command"].startswith("python -m pona_model.train") and m["seconds"] > 0
    assert m["checkpoint"]["sha256"] == file_sha256(checkpoint)
    # the training log beside the checkpoint is copied, and described by its own hash
    assert (release.path.parent / "train_log.jsonl").read_bytes() == (checkpoint.parent / "train_log.jsonl").read_bytes()
    assert set(m["files"]) == {"train_log.jsonl"}


def test_the_same_checkpoint_gives_the_same_bytes(checkpoint, releases, tmp_path):
    again = make_release(checkpoint, "tiny", tmp_path)
    assert again.sha256 == verify_release("tiny", releases).sha256


def test_training_seconds_add_up_the_segments_of_a_resumed_run(tmp_path):
    log = tmp_path / "train_log.jsonl"
    records = [{"event": "start", "iteration": 0}, {"iteration": 25, "seconds": 1.5}, {"iteration": 50, "seconds": 3.0},
               {"event": "start", "iteration": 50}, {"iteration": 75, "seconds": 2.25}]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    assert training_seconds(log) == 5.2  # 3.0 + 2.25, rounded to 0.1 s
    (tmp_path / "empty.jsonl").write_text('{"event": "start"}\n')
    assert training_seconds(tmp_path / "empty.jsonl") is None


def test_the_curves_last_row_becomes_the_metrics(tmp_path):
    curve = tmp_path / "curve.csv"
    curve.write_text("iteration,ssim,gates\n300,0.2185,0.941;1.033\n600,0.25,1.0;1.0\n")
    assert last_metrics(curve) == {"iteration": 600.0, "ssim": 0.25, "gates": "1.0;1.0"}


def test_the_command_refuses_to_overwrite_and_replaces_only_with_the_flag(checkpoint, tmp_path, capsys):
    curve = tmp_path / "curve.csv"
    curve.write_text("iteration,ssim\n2,0.5\n")
    png = tmp_path / "curve.png"
    png.write_bytes(b"\x89PNG not really")
    args = ["--checkpoint", str(checkpoint), "--name", "pona-synth", "--root", str(tmp_path / "rel"),
            "--curve-csv", str(curve), "--curve-png", str(png), "--command", "python -m pona_model.train preset=synth"]
    assert release_main(args) == 0
    assert "load it with generator.checkpoint=released:pona-synth" in capsys.readouterr().out
    folder = tmp_path / "rel" / "pona-synth"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [WEIGHTS, MANIFEST, "train_log.jsonl", "learning_curve.csv", "learning_curve.png"])
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["metrics"] == {"iteration": 2.0, "ssim": 0.5}
    assert manifest["release_command"].startswith("python -m pona_model.release --checkpoint")
    stamp = (folder / MANIFEST).stat().st_mtime_ns

    assert release_main(args) == 2
    err = capsys.readouterr().err
    assert f"release {folder} exists; pass --replace" in err and err.count("\n") == 1
    assert (folder / MANIFEST).stat().st_mtime_ns == stamp  # untouched

    assert release_main([*args, "--replace"]) == 0
    assert verify_release("pona-synth", tmp_path / "rel").manifest["command"] == "python -m pona_model.train preset=synth"
    assert [p.name for p in (tmp_path / "rel").iterdir()] == ["pona-synth"]  # no temporary or old folder left

    mine = tmp_path / "rel" / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("a user's file")
    assert release_main(["--checkpoint", str(checkpoint), "--name", "notes", "--root", str(tmp_path / "rel"),
                         "--replace"]) == 2
    assert "exists and is not a release" in capsys.readouterr().err
    assert (mine / "todo.txt").read_text() == "a user's file"


@pytest.mark.parametrize("flag, value, message", [
    ("--checkpoint", "nowhere.pt", "--checkpoint {tmp}/nowhere.pt does not exist"),
    ("--log", "nowhere.jsonl", "--log {tmp}/nowhere.jsonl is not a file"),
    ("--name", "../up", "release name '../up' is not a folder name"),
])
def test_bad_input_is_one_line_before_any_work(checkpoint, tmp_path, capsys, flag, value, message):
    args = {"--checkpoint": str(checkpoint), "--name": "x", "--root": str(tmp_path / "rel")}
    args[flag] = value if flag == "--name" else str(tmp_path / value)
    assert release_main([a for kv in args.items() for a in kv]) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and err.count("\n") == 1
    assert not (tmp_path / "rel").exists() or not any((tmp_path / "rel").iterdir())


# ----------------------------------------------------------------------------- loading a release


def test_the_release_loads_in_fp32_and_generates_what_the_checkpoint_does(checkpoint, releases):
    full = load_generator(checkpoint, "cpu", precision="fp32")
    released = load_generator("released:tiny", "cpu", precision="fp32", releases_root=releases)
    assert released.source == "released:tiny" and full.source == "path"
    assert released.sha256 == verify_release("tiny", releases).sha256 and released.iteration == 2
    mine, theirs = released.generator.state_dict(), full.generator.state_dict()
    for key, want in theirs.items():
        got = mine[key]
        assert got.dtype == want.dtype, key  # fp32 again, batch-norm running statistics included
        if want.is_floating_point():
            bound = torch.maximum(want.abs() * FP16_RELATIVE, torch.full_like(want, FP16_ABSOLUTE))
            assert ((got - want).abs() <= bound).all(), key
        else:
            assert torch.equal(got, want), key
    cond, kc, kt = _inputs()
    diff = (released.generate(cond, kc, kt) - full.generate(cond, kc, kt)).abs().max().item()
    assert 0 < diff <= OUTPUT_BOUND  # not bit-identical (fp16 did round), but within the bound


def test_plain_released_means_the_architectures_default(tmp_path):
    config = TrainConfig(generator=GeneratorConfig(arch="patn", n_blocks=2, ngf=8, image_size=(32, 16)))
    torch.manual_seed(0)
    state = {"format": GENERATOR_FORMAT, "version": FORMAT_VERSION, "iteration": 0, "config": to_dict(config),
             "generator": build_generator(config.generator).state_dict()}
    save_checkpoint(tmp_path / "patn.pt", state)
    make_release(tmp_path / "patn.pt", "patn-synth", tmp_path / "rel")
    loaded = load_generator("released", "cpu", arch="patn", releases_root=tmp_path / "rel")
    assert loaded.config.arch == "patn" and loaded.source == "released:patn-synth"
    with pytest.raises(ReleaseError, match="no released weights named 'pona-synth'"):
        load_generator("released", "cpu", releases_root=tmp_path / "rel")


def test_an_altered_release_is_refused_in_one_line_before_loading(releases, tmp_path):
    root = _altered_copy(releases, tmp_path)
    with pytest.raises(ReleaseError) as exc:
        load_generator("released:tiny", "cpu", releases_root=root)
    line = str(exc.value)
    assert "\n" not in line and str(root / "tiny" / WEIGHTS) in line and "(altered)" in line
    assert "git checkout --" in line and "TINY_TRAIN" in line  # the fix: restore it, or retrain with its command


# ----------------------------------------------------------------------------- the pipeline


def test_the_config_check_refuses_an_altered_release_before_any_stage(releases, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(ROOT_ENV, str(_altered_copy(releases, tmp_path)))
    out = tmp_path / "out"
    assert run_main(["preset=smoke", f"out={out}", "generator.checkpoint=released:tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m pipelines.run: error: generator.checkpoint=released:tiny")
    assert "(altered)" in err and "or train the generator here instead: generator.checkpoint=train" in err
    assert not out.exists()  # nothing ran


def test_an_absent_default_release_says_which_where_and_how_to_train(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "no-releases"))
    out = tmp_path / "out"
    assert run_main(["preset=smoke", f"out={out}", "generator.checkpoint=released"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no released weights named 'pona-synth'" in err
    assert str(tmp_path / "no-releases" / "pona-synth" / MANIFEST) in err
    assert err.rstrip().endswith("generator.checkpoint=train")
    assert not out.exists()


def test_a_released_generator_is_fingerprinted_by_its_hash_alone(releases, tmp_path, monkeypatch):
    sha = verify_release("tiny", releases).sha256
    args = ("preset=smoke", f"out={tmp_path}", "generator.checkpoint=released:tiny")
    monkeypatch.setenv(ROOT_ENV, str(releases))
    here = build_stages(load_pipeline_config(*args))
    assert here["train_generator"].inputs == {"source": "released", "sha256": sha}
    assert "prepare_auxiliary" not in here and here["train_generator"].deps == ("prepare_data",)
    moved = tmp_path / "moved" / "releases"
    shutil.copytree(releases, moved)  # the repository moved: the same stages, the same cache
    monkeypatch.setenv(ROOT_ENV, str(moved))
    assert {n: s.key for n, s in build_stages(load_pipeline_config(*args)).items()} == {
        n: s.key for n, s in here.items()}
    monkeypatch.setenv(ROOT_ENV, str(_altered_copy(releases, tmp_path)))
    altered = build_stages(load_pipeline_config(*args))
    assert altered["train_generator"].key != here["train_generator"].key
    assert altered["synthesize"].key != here["synthesize"].key
    # `train` is the explicit spelling of the default (empty): the same stages
    trained = build_stages(load_pipeline_config("preset=smoke", f"out={tmp_path}", "generator.checkpoint=train"))
    assert {n: s.key for n, s in trained.items()} == {
        n: s.key for n, s in build_stages(load_pipeline_config("preset=smoke", f"out={tmp_path}")).items()}


def test_the_default_run_loads_the_committed_release_and_train_restores_training(tmp_path, monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)  # the repository's own releases/
    assert (load_pipeline_config().generator.checkpoint, load_pipeline_config().patn.checkpoint) == ("released",
                                                                                                     "released")
    sha = verify_release("pona-synth").sha256
    default = build_stages(load_pipeline_config(f"out={tmp_path}"))
    assert default["train_generator"].inputs == {"source": "released", "sha256": sha}  # no generator training
    # the patn method loads its own release (PATN's weights, not PoNA's), and train restores its training
    with_patn = build_stages(load_pipeline_config(f"out={tmp_path}", "methods=[none,patn,pona]"))
    assert with_patn["train_generator[patn]"].inputs == {"source": "released",
                                                          "sha256": verify_release("patn-synth").sha256}
    patn_trained = build_stages(load_pipeline_config(f"out={tmp_path}", "methods=[none,patn,pona]",
                                                     "patn.checkpoint=train"))
    assert patn_trained["train_generator[patn]"].inputs.get("source") != "released"
    trained = build_stages(load_pipeline_config(f"out={tmp_path}", "generator.checkpoint=train"))
    assert trained["train_generator"].inputs.get("source") != "released"
    assert trained["train_generator"].key != default["train_generator"].key
    assert trained["synthesize"].key != default["synthesize"].key


def test_results_json_records_the_released_generator(releases, tmp_path, monkeypatch):
    monkeypatch.setenv(ROOT_ENV, str(releases))
    sha = verify_release("tiny", releases).sha256
    cfg = load_pipeline_config("preset=smoke", f"out={tmp_path}", "generator.checkpoint=released:tiny",
                               "methods=[pona]", "evaluate_generator=false", "reid.optim.epochs=1")
    report = run_pipeline(cfg)
    results = json.loads(Path(report["results_path"]).read_text())
    g = results["generator"]
    assert (g["source"], g["sha256"], g["iterations"], g["trained"]) == ("released:tiny", sha, 2, False)
    assert results["synthesis"].get("generated", 0) > 0 and 0 <= results["methods"]["pona"]["mAP"] <= 100
    folder = Path(report["stages"]["train_generator"]["folder"])
    done = json.loads((folder / DONE).read_text())
    assert done["result"]["checkpoint"] == f"@cache/train_generator/{folder.name}/{WEIGHTS}"  # moves with the cache
    assert (folder / WEIGHTS).read_bytes() == (releases / "tiny" / WEIGHTS).read_bytes()
