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
