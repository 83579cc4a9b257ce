"""A re-ID start trains on a subset of the auxiliary people's images (``synthmarket.auxiliary_subset``,
the pretrain_reid stage's ``pretrain.images``); which images each subset keeps decides which
invariance the start can learn."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from synthmarket.auxiliary_subset import subset_manifest


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
    subset = subset_manifest(_manifest(tmp_path), "one_view")
    assert subset.groupby("identity")["camera"].apply(sorted).to_dict() == {1: [1, 1, 3], 2: [5, 6]}


def test_one_track_keeps_the_first_camera_and_per_id_caps_the_count(tmp_path):
    subset = subset_manifest(_manifest(tmp_path), "one_track")
    assert subset.groupby("identity")["camera"].apply(sorted).to_dict() == {1: [1, 1], 2: [4]}
    capped = subset_manifest(_manifest(tmp_path), "all", per_id=1)
    assert capped["identity"].tolist() == [1, 2] and capped["path"].map(Path).map(Path.is_absolute).all()


def test_all_keeps_every_train_image(tmp_path):
    assert len(subset_manifest(_manifest(tmp_path), "all")) == 8


def test_a_manifest_without_views_is_refused_for_one_view_naming_the_column(tmp_path):
    folder = _manifest(tmp_path)
    pd.read_csv(folder / "manifest.csv").drop(columns="view").to_csv(folder / "manifest.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks column.*view"):
        subset_manifest(folder, "one_view")
    assert len(subset_manifest(folder, "one_track")) == 3  # the other subsets need no view
