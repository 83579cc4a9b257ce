"""The re-ID starts of the regime search (``bench/instance_start.py``) train on a subset of the auxiliary
people's images; which images each option keeps decides which invariance the start can learn."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _subset_function():
    spec = importlib.util.spec_from_file_location("instance_start", ROOT / "bench" / "instance_start.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.one_image_per_identity


def _manifest(folder: Path) -> Path:
    # person 1: front in cameras 1 and 3 (3 images), back in camera 2 (2 images) -> modal view front
    # person 2: left in camera 4 (1 image), right in cameras 5 and 6 (2 images) -> modal view right
    rows = [(1, 1, "front"), (1, 1, "front"), (1, 2, "back"), (1, 2, "back"), (1, 3, "front"),
            (2, 4, "left"), (2, 5, "right"), (2, 6, "right")]
    table = pd.DataFrame([{"split": "train", "identity": pid, "camera": cam, "view": view,
                           "name": f"{pid:04d}_c{cam}s1_{i:06d}_00.jpg"} for i, (pid, cam, view) in enumerate(rows)])
    table["file"] = "bounding_box_train/" + table["name"]
    table.to_csv(folder / "manifest.csv", index=False)
    return folder


def test_one_view_keeps_each_persons_modal_view_from_every_camera(tmp_path):
    subset = _subset_function()(_manifest(tmp_path), per_id=100, one_view=True)
    assert subset.groupby("identity")["camera"].apply(sorted).to_dict() == {1: [1, 1, 3], 2: [5, 6]}


def test_one_track_keeps_the_first_camera_and_per_id_caps_the_count(tmp_path):
    subset = _subset_function()(_manifest(tmp_path), per_id=100, one_track=True)
    assert subset.groupby("identity")["camera"].apply(sorted).to_dict() == {1: [1, 1], 2: [4]}
    capped = _subset_function()(_manifest(tmp_path), per_id=1)
    assert capped["identity"].tolist() == [1, 2] and capped["path"].map(Path).map(Path.is_absolute).all()
