"""Reliability: nothing of the user's is deleted, nothing stale or half-done is reused, bad input is
refused early with one line, and a real dask cluster gives the in-process answer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from augment.merge import merge_training_set
from synthmarket import SynthMarketConfig, generate_synthmarket
from synthmarket.__main__ import main as synthmarket_main
from synthmarket.dataset import PARTIAL, OutputFolderError


def _tiny(**overrides) -> SynthMarketConfig:
    values = dict(n_train_ids=3, n_test_ids=3, max_cameras=2, max_images_per_camera=2, n_distractors=1,
                  n_junk=1, test_pairs=10, workers=1, progress=False)
    values.update(overrides)
    return SynthMarketConfig(**values)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- data safety

def test_synthmarket_never_deletes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    """Defect: with synthmarket.json gone, a rerun with other settings deleted the original images."""
    root = tmp_path / "d"
    generate_synthmarket(root, _tiny(n_train_ids=4))
    (root / "synthmarket.json").unlink()
    before = _snapshot(root)
    with pytest.raises(OutputFolderError, match="not empty"):
        generate_synthmarket(root, _tiny())
    assert _snapshot(root) == before


def test_synthmarket_refuses_a_users_folder_and_a_file(tmp_path: Path, capsys) -> None:
    users = tmp_path / "Market-1501"
    (users / "bounding_box_train").mkdir(parents=True)
    (users / "bounding_box_train" / "0002_c1s1_000451_03.jpg").write_bytes(b"a real image")
    assert synthmarket_main([f"out={users}", "n_train_ids=3", "n_test_ids=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and "\n" not in err
    assert (users / "bounding_box_train" / "0002_c1s1_000451_03.jpg").read_bytes() == b"a real image"
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    with pytest.raises(OutputFolderError, match="is a file"):
        generate_synthmarket(a_file, _tiny())
    assert a_file.read_text() == "keep me"


def test_synthmarket_resumes_its_own_interrupted_folder(tmp_path: Path) -> None:
    """A folder carrying the generator's own marker is resumed: strays of that run go, the rest is made."""
    root = tmp_path / "d"
    (root / "bounding_box_train").mkdir(parents=True)
    (root / PARTIAL).touch()
    (root / "bounding_box_train" / "9999_c1s1_000001_01.jpg").write_bytes(b"stray of an interrupted run")
    manifest = generate_synthmarket(root, _tiny())
    names = {p.name for p in (root / "bounding_box_train").glob("*.jpg")}
    assert names == set(manifest.loc[manifest.split == "train", "name"])
    assert not (root / PARTIAL).exists() and (root / "synthmarket.json").is_file()
    assert list(generate_synthmarket(root, _tiny())["name"]) == list(manifest["name"])  # finished: reused
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(generate_synthmarket(empty, _tiny())) == len(manifest)


def test_merge_never_deletes_a_partial_folder_it_did_not_make(tmp_path: Path) -> None:
    image = tmp_path / "src" / "bounding_box_train" / "0001_c1s1_000001_01.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"x")
    kept = pd.DataFrame([{"name": image.name, "path": str(image), "identity": 1, "camera": 1}])
    foreign = tmp_path / ".out.partial"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not made by"):
        merge_training_set(kept, None, tmp_path / "src", tmp_path / "out")
    assert (foreign / "notes.txt").read_text() == "mine"
    foreign.rename(tmp_path / "elsewhere")
    manifest = merge_training_set(kept, None, tmp_path / "src", tmp_path / "out")
    assert len(manifest) == 1 and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "bounding_box_train", "manifest.csv"]


# ----------------------------------------------------------------------------- the stage cache

_RACER = """
import json, os, sys, time
from pathlib import Path
from pipelines.stage_cache import run_stage
root, log = sys.argv[1], sys.argv[2]
def body(folder):
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(1.0)
    for i in range(20):
        (folder / f"{i}.txt").write_text(str(i))
    return {"files": [str(folder / f"{i}.txt") for i in range(20)]}
r = run_stage(root, "race", "k", {}, body, verify=lambda res: None)
print(json.dumps({"cached": r.cached, "n": len(r.result["files"])}))
"""


def test_two_processes_racing_a_stage_run_it_once_and_both_get_its_result(tmp_path: Path) -> None:
    """Defect: with no lock both runs wrote into one folder; one failed, the other recorded a mix."""
    import json
    import subprocess
    import sys

    log = tmp_path / "bodies.log"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(tmp_path / "cache"), str(log)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(log.read_text().split()) == 1  # the body ran once
    assert sorted(o["cached"] for o in outs) == [False, True] and {o["n"] for o in outs} == {20}


def test_a_stage_is_recorded_only_after_its_outputs_verify(tmp_path: Path) -> None:
    from pipelines.stage_cache import DONE, run_stage

    def body(folder: Path) -> dict:
        (folder / "a.txt").write_text("a")
        return {"files": [str(folder / "a.txt"), str(folder / "b.txt")], "n": 2}

    with pytest.raises(RuntimeError, match="do not exist"):
        run_stage(tmp_path, "s", "k", {}, body)
    assert not (tmp_path / "s" / "k" / DONE).exists()

    def count(result: dict) -> None:
        if len(list(Path(result["files"][0]).parent.glob("*.txt"))) != result["n"]:
            raise RuntimeError("count mismatch")

    with pytest.raises(RuntimeError, match="count mismatch"):
        run_stage(tmp_path, "t", "k", {}, lambda f: {"files": [str(f / "x")], "n": 2} if (f / "x").touch() is None
                  else {}, count)
    assert not (tmp_path / "t" / "k" / DONE).exists()


def test_a_moved_cache_is_reused_from_its_new_place(tmp_path: Path) -> None:
    """Defect: done.json held absolute paths, so a moved run folder read (or failed on) the old one."""
    from pipelines.stage_cache import run_stage

    def body(folder: Path) -> dict:
        (folder / "out.txt").write_text("result")
        return {"out": str(folder / "out.txt"), "outside": "/data/Market-1501"}

    first = run_stage(tmp_path / "r1" / "cache", "s", "k", {}, body)
    (tmp_path / "r1").rename(tmp_path / "r2")
    again = run_stage(tmp_path / "r2" / "cache", "s", "k", {}, body)
    assert again.cached and again.result["out"] == str(tmp_path / "r2" / "cache" / "s" / "k" / "out.txt")
    assert Path(again.result["out"]).read_text() == "result" and again.result["outside"] == "/data/Market-1501"
    assert first.result["out"] != again.result["out"]


def test_orphan_temporary_files_are_removed_when_a_stage_resumes(tmp_path: Path) -> None:
    from pipelines.stage_cache import STARTED, run_stage

    folder = tmp_path / "s" / "k"
    (folder / "train").mkdir(parents=True)
    (folder / STARTED).write_text("{}")
    orphan = folder / "train" / ".checkpoint.pt.x1y2.tmp"
    orphan.write_bytes(b"half a checkpoint")
    kept = folder / "train" / "checkpoint.pt"
    kept.write_bytes(b"a whole one")
    run_stage(tmp_path, "s", "k", {}, lambda f: {"checkpoint": str(f / "train" / "checkpoint.pt")})
    assert not orphan.exists() and kept.read_bytes() == b"a whole one"


def test_files_are_fingerprinted_by_content_with_a_size_and_mtime_cache(tmp_path: Path) -> None:
    """Defect: the data stage keyed the annotation file by its size, so a same-size edit was reused."""
    import os

    from pipelines.config import load_pipeline_config
    from pipelines.stage_cache import file_digest
    from pipelines.stages import prepare_data
    from tests.conftest import make_pair_data

    root = make_pair_data(tmp_path / "market")
    ann = root / "market-annotation-train.csv"
    cfg = load_pipeline_config("data.dataset=market1501", f"data.root={root}", f"data.annotations={ann}",
                               f"out={tmp_path / 'out'}")
    before = prepare_data.settings(cfg).fingerprint()
    text = ann.read_text()
    edited = text.replace("[3, 7,", "[4, 7,", 1)
    assert edited != text and len(edited) == len(text)
    ann.write_text(edited)  # same size, at once (within the clock tick): still seen
    assert prepare_data.settings(cfg).fingerprint() != before
    old = ann.stat().st_mtime_ns - 10**11
    os.utime(ann, ns=(old, old))
    cache = tmp_path / "out" / "cache"
    edited_digest = file_digest(ann, cache)
    ann.write_text(text)  # same size and an old mtime: the remembered digest is trusted (that keeps it fast)
    os.utime(ann, ns=(old, old))
    assert file_digest(ann, cache) == edited_digest != file_digest(ann)


# ----------------------------------------------------------------------------- bad input, one error path

@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    """A tiny SynthMarket root used as a local Market-1501 copy."""
    root = tmp_path_factory.mktemp("market") / "Market-1501-v15.09.15"
    generate_synthmarket(root, _tiny())
    return root


def _bad_files(market: Path, tmp: Path) -> dict[str, str]:
    bad_csv = tmp / "bad-annotations.csv"
    bad_csv.write_text("name:keypoints_y:keypoints_x\n0001_c1s1_000001_01.jpg:[1, 2]:[3]\n")
    escaping = tmp / "escaping-pairs.csv"
    escaping.write_text("from,to\n../../etc/passwd,0001_c1s1_000001_01.jpg\n")
    return {"bad_csv": str(bad_csv), "escaping": str(escaping), "ann": str(market / "market-annotation-test.csv")}


def _exit_code(main, argv: list[str]) -> int:
    """A command's exit status, whether it returns it or (config errors) raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


BAD_RUN_INPUTS = [
    (["portion=1.5"], "portion must be a number in (0, 1]"),
    (["portion=0"], "portion must be a number in (0, 1]"),
    (["generator.nblocks=2"], "unknown key 'generator.nblocks'"),
    (["dask.scheduler=nowhere"], "scheduler must be inprocess, local or a dask scheduler address"),
    (["device=cuda:7"], "device='cuda:7'"),
    (["device=nonsense"], "not a device name"),
    (["seed=-1"], "seed must be a non-negative integer"),
    (["seed=["], "seed: cannot read the value '['"),
    (["evaluate_pairs=-1"], "evaluate_pairs must be >= 1"),
    (["augment.shard_size=0"], "augment.shard_size must be >= 1"),
    (["augment.batch_size=0"], "augment.batch_size must be >= 1"),
    (["generator.checkpoint={tmp}"], "is a folder"),
    (["generator.checkpoint={tmp}/none.pt"], "does not exist"),
    (["generator.train.schedule.batch_size=0"], "generator.train.schedule.batch_size must be >= 1, got 0"),
    (["dataset=market1501", "data.root={market}", "data.annotations={bad_csv}"], "line 2"),
    (["dataset=market1501", "data.root={market}", "data.test_annotations={ann}", "data.test_pairs={escaping}"],
     "'../../etc/passwd' is not a plain file name"),
    (["dataset=market1501", "data.root={market}", "data.test_annotations={ann}"], "go together"),
]


@pytest.mark.parametrize("args, message", BAD_RUN_INPUTS)
def test_bad_pipeline_input_is_refused_in_one_line_before_any_stage(args, message, market, tmp_path, capsys):
    """Defects: device, sizes, seeds, evaluate_pairs and files were checked after stages ran, or never."""
    from pipelines.run import main as run_main

    values = {"tmp": str(tmp_path), "market": str(market), **_bad_files(market, tmp_path)}
    out = tmp_path / "out"
    code = _exit_code(run_main, ["preset=smoke", f"out={out}", *[a.format(**values) for a in args]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()  # nothing ran, nothing was written


@pytest.mark.parametrize("args, message", [
    (["seeds=abc"], "seeds: expected a comma-separated list"),
    (["portions="], "portions: expected a comma-separated list"),
    (["portions=0.5,1.5"], "portion must be a number in (0, 1]"),
    (["device=cuda:7"], "device='cuda:7'"),
])
def test_bad_sweep_input_is_refused_in_one_line(args, message, tmp_path, capsys):
    from pipelines.sweep import main as sweep_main

    assert _exit_code(sweep_main, ["preset=smoke", f"out={tmp_path}", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not any(tmp_path.iterdir())


def test_names_in_csvs_must_stay_inside_their_folder(tmp_path: Path) -> None:
    """Defect: a pairs or annotation row naming ../../etc/passwd was opened outside images=."""
    from poseformats.annotations import FormatError, read_annotations, read_pairs

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("from,to\na.jpg,/etc/passwd\n")
    with pytest.raises(FormatError, match="line 2: image name '/etc/passwd' is not a plain file name"):
        read_pairs(pairs)
    ann = tmp_path / "ann.csv"
    ys = "[" + ", ".join(["1"] * 18) + "]"
    ann.write_text(f"name:keypoints_y:keypoints_x\nok.jpg:{ys}:{ys}\n../x.jpg:{ys}:{ys}\n")
    with pytest.raises(FormatError, match=r"line 3: image name '\.\./x\.jpg'"):
        read_annotations(ann)


def test_every_entry_point_fails_in_one_line_and_debug_shows_the_traceback(tmp_path: Path, capsys) -> None:
    import torch

    from runtime.config import entry_point

    @entry_point("python -m demo")
    def demo(argv: list[str]) -> int:
        if argv == ["boom"]:
            raise RuntimeError("disk full\nsecond line")
        if argv == ["stop"]:
            raise KeyboardInterrupt
        raise ValueError("bad key x=1; use x=2")

    assert demo(["bad"]) == 2 and capsys.readouterr().err.startswith("python -m demo: error: bad key x=1; use x=2")
    assert demo(["boom"]) == 1 and "disk full second line" in capsys.readouterr().err
    assert demo(["stop"]) == 130 and "interrupted" in capsys.readouterr().err
    assert demo(["boom", "--debug"]) == 1 and "Traceback" in capsys.readouterr().err
    # A checkpoint of random bytes: the message never repeats torch's advice to load it unsafely.
    from pona_model.generate import main as generate_main

    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 8)
    assert torch.__version__  # the loader is torch's
    generate_main([f"checkpoint={junk}", "images=x", "annotations=y", "pairs=z", f"out={tmp_path / 'o'}"])
    err = capsys.readouterr().err
    assert "not a readable checkpoint" in err and "weights_only" not in err and err.count("\n") == 1


def test_poses_refuses_a_dataset_root_and_points_at_the_split(tmp_path: Path, capsys) -> None:
    """Defect: images=<dataset root> wrote a header-only CSV and exited 0."""
    from poseformats import estimate

    (tmp_path / "bounding_box_train").mkdir()
    with pytest.raises(FileNotFoundError, match="bounding_box_train"):
        estimate.list_images(tmp_path)


def test_ctrl_c_saves_a_checkpoint_the_rerun_resumes(pair_data, tmp_path: Path) -> None:
    """Defect: Ctrl-C lost the iterations since the last periodic checkpoint."""
    import os
    import signal

    from pona_model.checkpoint_tags import GENERATOR_FORMAT
    from pona_model.train_config import load_train_config
    from pona_model.trainer import Trainer
    from runtime.checkpoint import load_checkpoint
    from runtime.training import CHECKPOINT_NAME
    from tests.conftest import TINY_TRAIN

    cfg = load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={tmp_path / 'run'}", "checkpoint_every=100",
                            "resume=true")
    trainer = Trainer(cfg)
    real_step = trainer.step
    calls = []

    def step(batch):
        calls.append(1)
        out = real_step(batch)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the run
        return out

    trainer.step = step
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN when started in the background
    with pytest.raises(KeyboardInterrupt, match="stopped at iteration 3"):
        trainer.fit()
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME, GENERATOR_FORMAT)
    assert state["iteration"] == 3 and signal.getsignal(signal.SIGINT) is before  # the handler is restored
    total = Trainer(cfg).total_iterations
    assert total > 3 and Trainer(cfg).fit()["iteration"] == total  # resumed to the end


# ----------------------------------------------------------------------------- results.json

def test_results_json_records_provenance_and_a_cached_rerun_keeps_the_first_timings(tmp_path: Path) -> None:
    """Defect: results.json lacked commit, versions, device, threads and command; a cached rerun
    overwrote the run's timings with ~0 s."""
    import json

    from pipelines.report import write_run_report

    first = {"methods": {"none": {"mAP": 2.0}}, "seconds": 95.0, "config": {"device": "cpu", "precision": "fp32"},
             "stages": {"train_reid[none]": {"seconds": 90.0, "cached": False, "folder": "/c/t/1"}}}
    write_run_report(tmp_path, first)
    rerun = {**first, "seconds": 0.4, "stages": {"train_reid[none]": {"seconds": 90.0, "cached": True,
                                                                      "folder": "/c/t/1"}}}
    record = json.loads(write_run_report(tmp_path, rerun).read_text())
    prov = record["provenance"]
    assert prov["device"] == "cpu" and prov["precision"] == "fp32" and prov["threads"]["torch"] >= 1
    assert prov["commit"] and prov["versions"]["torch"] and isinstance(prov["command"], list)
    assert record["seconds"] == 0.4 and record["first_run"]["seconds"] == 95.0
    assert record["first_run"]["stages"]["train_reid[none]"]["cached"] is False
    record = json.loads(write_run_report(tmp_path, rerun).read_text())
    assert record["first_run"]["seconds"] == 95.0  # still the run that computed the results


def test_provenance_names_the_commit_the_run_started_with_and_the_cpu_model(tmp_path: Path) -> None:
    """A run that outlives its checkout (a commit lands meanwhile) must name the code that ran."""
    import json

    from pipelines import provenance as prov_module
    from pipelines.report import STARTED_AT, write_run_report

    report = {"methods": {}, "config": {"device": "cpu"}, STARTED_AT: "a" * 40}
    prov = json.loads(write_run_report(tmp_path, report).read_text())["provenance"]
    assert prov["commit"] == "a" * 40 and prov["commit_at_report"] == prov_module.commit() != "a" * 40
    assert STARTED_AT not in json.loads((tmp_path / "results.json").read_text()) and STARTED_AT in report
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\n")
    assert prov_module.cpu_name(cpuinfo) == "AMD EPYC 9B14"
    assert prov_module.cpu_name(tmp_path / "absent")  # falls back to what platform knows


# ----------------------------------------------------------------------------- help and docs drift

def test_help_shows_the_default_presets_values_and_sweep_usage_works(tmp_path: Path, capsys) -> None:
    """Defects: --help showed the built-in defaults, not the default preset's; the sweep's usage
    offered --print-config, which failed; a one-seed sweep printed '± 0.0'."""
    from pipelines.config import PipelineConfig
    from pipelines.run import main as run_main
    from pipelines.sweep import main as sweep_main
    from pipelines.sweep import markdown_table, summary_table

    assert PipelineConfig().methods == ["none", "pona"]
    assert _exit_code(run_main, ["--help"]) == 0
    assert "  methods=[none, pona, copy, oracle]  " in capsys.readouterr().out  # the default preset's value
    assert sweep_main(["--print-config", "portions=0.5", "seeds=3", f"out={tmp_path}"]) == 0
    assert "portions:\n- 0.5\nseeds:\n- 3\n" in capsys.readouterr().out and not any(tmp_path.iterdir())
    one_seed = pd.DataFrame([(0.2, 0, "none", 2.0, 1.0)], columns=["portion", "seed", "method", "mAP", "rank1"])
    assert "| none | 2.0 |" in markdown_table(summary_table(one_seed))
    two = pd.concat([one_seed, one_seed.assign(seed=1, mAP=4.0)])
    assert "| none | 3.0 ± 1.4 |" in markdown_table(summary_table(two))
