"""Reliability: nothing of the user's is deleted, nothing stale or half-done is reused, bad input is
refused early with one line, and a real dask cluster gives the in-process answer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from augment.merge import merge_training_set
from reid.synthmarket import SynthMarketConfig, generate_synthmarket
from reid.synthmarket.__main__ import main as synthmarket_main
from reid.synthmarket.dataset import PARTIAL, OutputFolderError


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
    outs = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
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
    before = prepare_data.inputs(cfg)
    text = ann.read_text()
    edited = text.replace("[3, 7,", "[4, 7,", 1)
    assert edited != text and len(edited) == len(text)
    ann.write_text(edited)  # same size, at once (within the clock tick): still seen
    assert prepare_data.inputs(cfg) != before
    old = ann.stat().st_mtime_ns - 10**11
    os.utime(ann, ns=(old, old))
    cache = tmp_path / "out" / "cache"
    edited_digest = file_digest(ann, cache)
    ann.write_text(text)  # same size and an old mtime: the remembered digest is trusted (that keeps it fast)
    os.utime(ann, ns=(old, old))
    assert file_digest(ann, cache) == edited_digest != file_digest(ann)
