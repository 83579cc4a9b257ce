"""Relocatable runs: a finished run folder copied to another path (the old one deleted) is reused from
the cache in full, with the same results.json, and nothing under it names the machine's absolute path;
inputs outside it are known by their content, not their path."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.config import load_pipeline_config
from pipelines.graph import build_stages
from pipelines.run import run_pipeline
from pona_model.metrics.inception import files_digest

# Links made as symlinks, so the merged sets' links are checked too (hard links are location-free).
SMOKE = ("preset=smoke", "augment.link=symlink")
# What a rerun may change in results.json: when and on what it ran, and that it came from the cache.
VOLATILE = ("provenance", "seconds", "first_run")


def _files_naming(folder: Path, text: str) -> list[str]:
    """Files under ``folder`` whose bytes contain ``text`` (checkpoints and images included)."""
    needle = os.fsencode(text)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and not p.is_symlink() and needle in p.read_bytes())


def _stable(results: dict) -> dict:
    out = {k: v for k, v in results.items() if k not in VOLATILE}
    out["stages"] = {name: {k: v for k, v in s.items() if k != "cached"} for name, s in out["stages"].items()}
    return out


def test_a_copied_run_folder_is_reused_whole_and_names_no_absolute_path(tmp_path: Path) -> None:
    """Defect: merged links, the generator stage's checkpoint, kept / synthesis tables, trainers'
    checkpoints and reports held absolute paths, so a moved run folder broke or read the old place."""
    first = tmp_path / "disk1" / "runs"
    report = run_pipeline(load_pipeline_config(*SMOKE, f"out={first}"))
    before = json.loads(Path(report["results_path"]).read_text())
    assert not any(s["cached"] for s in before["stages"].values())
    assert _files_naming(first, str(tmp_path)) == []  # no file of the run names where it is

    moved = tmp_path / "disk2" / "elsewhere" / "runs"
    shutil.copytree(first, moved, symlinks=True)
    shutil.rmtree(tmp_path / "disk1")
    links = [p for p in moved.rglob("*") if p.is_symlink()]
    assert links and all(not os.path.isabs(os.readlink(p)) and p.exists() for p in links)

    again = run_pipeline(load_pipeline_config(*SMOKE, f"out={moved}"))
    after = json.loads(Path(again["results_path"]).read_text())
    assert all(s["cached"] for s in after["stages"].values())
    assert _stable(after) == _stable(before)  # paths in it are relative to the run folder: identical
    assert after["generator"]["checkpoint"].startswith("../cache/train_generator/")
    assert Path(again["generator"]["checkpoint"]).is_file()  # the returned report: absolute, the new place
    assert str(moved) in again["generator"]["checkpoint"]
    assert _files_naming(moved, str(tmp_path)) == []


def test_a_given_generator_checkpoint_is_known_by_its_content_wherever_it_lies(trained: Path, tmp_path: Path) -> None:
    """Defect: the stage's fingerprint held the checkpoint's absolute path (a moved file redid every
    stage after it) and its result pointed at the user's file (read later, wherever it was then)."""
    def key(checkpoint: Path) -> str:
        cfg = load_pipeline_config("preset=smoke", f"out={tmp_path / 'out'}", f"generator.checkpoint={checkpoint}")
        return build_stages(cfg)["train_generator"].key

    here = key(trained)
    moved = tmp_path / "moved" / "model.pt"
    moved.parent.mkdir()
    shutil.move(trained, moved)
    assert key(moved) == here
    with open(moved, "r+b") as handle:  # another content is another stage
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 1]))
    assert key(moved) != here


def test_fid_statistics_are_keyed_by_content_not_modification_times(tmp_path: Path) -> None:
    """Defect: the real images' FID statistics were cached by names, sizes and mtimes: a restored
    folder (new times) recomputed them, and an edited file given back its old mtime reused stale ones."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    paths = sorted(folder.glob("*.png"))
    digest = files_digest(paths)
    restored = tmp_path / "restored"
    shutil.copytree(folder, restored)  # same bytes, new modification times
    for p in restored.glob("*.png"):
        os.utime(p, ns=(10**18, 10**18))
    assert files_digest(sorted(restored.glob("*.png"))) == digest
    stamp = paths[0].stat()
    data = bytearray(paths[0].read_bytes())
    data[-1] ^= 1
    paths[0].write_bytes(bytes(data))  # same size, and the old mtime given back
    os.utime(paths[0], ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert files_digest(paths) != digest


def test_a_checkpoint_written_in_a_stage_is_read_at_its_new_place(tmp_path: Path) -> None:
    """A training stage killed half-way and moved resumes: its checkpoint's config names the run's files
    relative to the checkpoint, and reads back as absolute paths where the folder is now (the trainers
    compare them with the config they resume with)."""
    from runtime.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
    from runtime.portable import portable_root

    def train(root: Path) -> Path:
        return root / "train_reid" / "k" / "train"

    root = tmp_path / "disk1" / "cache"
    data = root / "merge" / "m" / "dataset"
    state = {"format": "test", "version": FORMAT_VERSION, "weights_init": f"checkpoint: {root}/p/k/c.pt (sha256 ab)",
             "config": {"out": str(train(root)), "data": {"root": str(data), "elsewhere": "/data/Market-1501"}}}
    with portable_root(root):
        save_checkpoint(train(root) / "checkpoint.pt", state)
    assert os.fsencode(str(tmp_path)) not in (train(root) / "checkpoint.pt").read_bytes()
    shutil.move(tmp_path / "disk1", tmp_path / "disk2")
    moved = tmp_path / "disk2" / "cache"
    loaded = load_checkpoint(train(moved) / "checkpoint.pt", "test")
    assert loaded["config"] == {"out": str(train(moved)),
                                "data": {"root": str(moved / "merge" / "m" / "dataset"), "elsewhere": "/data/Market-1501"}}
    assert loaded["weights_init"] == "checkpoint: ../../../p/k/c.pt (sha256 ab)"
    save_checkpoint(tmp_path / "plain.pt", state)  # outside a stage: written as given
    assert load_checkpoint(tmp_path / "plain.pt", "test")["config"] == state["config"]


def test_a_users_dataset_changed_in_place_is_refused_in_one_line(tmp_path: Path) -> None:
    """Defect: a dataset outside out= was known by its path alone, so images replaced at the same path
    were never noticed and every cached stage went on with results from the old ones."""
    from pipelines.graph import execute
    from pipelines.stage_cache import InputChanged
    from synthmarket import SynthMarketConfig, generate_synthmarket

    market = tmp_path / "Market-1501"
    generate_synthmarket(market, SynthMarketConfig(n_train_ids=3, n_test_ids=3, max_cameras=2, max_images_per_camera=2,
                                                   n_distractors=1, n_junk=1, test_pairs=10, workers=1,
                                                   progress=False))
    cfg = load_pipeline_config("preset=smoke", "data.dataset=market1501", f"data.root={market}",
                               f"out={tmp_path / 'out'}")
    stage = build_stages(cfg)["prepare_data"]
    first = execute(stage, tmp_path / "out" / "cache", {})
    assert first.result.content["images"] > 0 and execute(stage, tmp_path / "out" / "cache", {}).cached
    image = sorted((market / "bounding_box_train").glob("*.jpg"))[0]
    image.write_bytes(image.read_bytes()[:-10])  # replaced in place by another file
    with pytest.raises(InputChanged) as caught:
        execute(stage, tmp_path / "out" / "cache", {})
    message = str(caught.value)
    assert "\n" not in message and f"the images under {market} changed since this stage was recorded" in message
    assert message.endswith("restore them, or use another out= to compute everything from the new ones")
