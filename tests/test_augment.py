"""The augmentation library: subsample invariants, condition policies, synthesis, merge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augment import (
    copy_control,
    kept_count,
    merge_training_set,
    plan_synthesis,
    select_conditions,
    subsample,
    synthesize,
)
from poseformats.annotations import read_annotations
from reid.market_index import index_market


def fake_index(counts: dict[int, int], cameras: int = 6) -> pd.DataFrame:
    """A Market-style index: identity -> number of training images, plus a query/gallery identity."""
    rows = []
    for pid, n in counts.items():
        for k in range(n):
            rows.append({"name": f"{pid:04d}_c{k % cameras + 1}s1_{k:06d}_00.jpg", "identity": pid,
                         "camera": k % cameras + 1, "split": "train", "kind": "normal", "path": f"/x/{pid}_{k}"})
    for split in ("query", "gallery"):
        rows.append({"name": f"0999_c1s1_000000_0{split == 'gallery'}.jpg", "identity": 999, "camera": 1,
                     "split": split, "kind": "normal", "path": "/y"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n, p, k", [(5, 0.2, 1), (3, 0.2, 1), (10, 0.25, 3), (6, 0.25, 2), (2, 0.25, 1),
                                     (1, 0.2, 1), (7, 1.0, 7), (7, 0.5, 4), (4, 0.5, 2), (9, 0.05, 1)])
def test_rounding_rule(n, p, k):
    assert kept_count(n, p) == k


def test_subsample_invariants():
    counts = {1: 5, 2: 1, 3: 12, 4: 7}
    index = fake_index(counts)
    kept, missing = subsample(index, 0.4, seed=3)
    assert set(kept["name"]).isdisjoint(missing["name"])
    train = index[index["split"] == "train"]
    assert sorted(set(kept["name"]) | set(missing["name"])) == sorted(train["name"])
    for pid, n in counts.items():
        assert (kept["identity"] == pid).sum() == kept_count(n, 0.4)
    assert 999 not in set(kept["identity"]) | set(missing["identity"])  # test identities never enter
    again, _ = subsample(index.sample(frac=1, random_state=0), 0.4, seed=3)  # row order does not matter
    assert list(again["name"]) == list(kept["name"])
    other, _ = subsample(index, 0.4, seed=4)
    assert list(other["name"]) != list(kept["name"])
    smaller, _ = subsample(index, 0.2, seed=3)
    assert set(smaller["name"]) <= set(kept["name"])  # nested across portions for one seed
    full, none_missing = subsample(index, 1.0, seed=3)
    assert len(full) == len(train) and none_missing.empty


@pytest.mark.parametrize("portion", [0, -0.1, 1.5, "0.2", True])
def test_bad_portion_is_rejected(portion):
    with pytest.raises(ValueError, match=r"portion must be a number in \(0, 1\]"):
        subsample(fake_index({1: 3}), portion, seed=0)


def test_condition_policies():
    index = fake_index({1: 6, 2: 4})
    kept, missing = subsample(index, 0.5, seed=0)
    for policy in ("random", "same_camera"):
        chosen = select_conditions(missing, kept, policy, seed=1)
        by_name = kept.set_index("name")
        assert (by_name.loc[chosen["condition"], "identity"].to_numpy() == chosen["identity"].to_numpy()).all()
        reordered = select_conditions(missing.iloc[::-1], kept, policy, seed=1)
        assert dict(zip(reordered["name"], reordered["condition"])) == dict(zip(chosen["name"], chosen["condition"]))
    # same_camera: identity 1 keeps images of 3 cameras; a missing image of a kept camera gets that camera
    kept1 = pd.DataFrame({"name": ["0001_a", "0001_b"], "identity": [1, 1], "camera": [2, 3]})
    miss1 = pd.DataFrame({"name": ["0001_m", "0001_n"], "identity": [1, 1], "camera": [3, 5]})
    chosen = select_conditions(miss1, kept1, "same_camera", seed=0)
    assert chosen["condition"].iloc[0] == "0001_b"
    # closest_pose: the kept pose that is a shifted copy of the target wins over a different one
    base = np.full((18, 2), -1)
    base[:6] = [[10, 20], [20, 20], [20, 10], [40, 8], [20, 30], [40, 32]]
    arms_up = base.copy()
    arms_up[[3, 5]] = [[2, 8], [2, 32]]
    keypoints = {"0001_m": base, "0001_a": arms_up, "0001_b": base + 7}
    chosen = select_conditions(miss1.iloc[:1], kept1, "closest_pose", seed=0, keypoints=keypoints)
    assert chosen["condition"].iloc[0] == "0001_b"
    with pytest.raises(ValueError, match="unknown condition policy"):
        select_conditions(miss1, kept1, "nearest")
    with pytest.raises(ValueError, match="no kept image"):
        select_conditions(miss1.assign(identity=5), kept1)


@pytest.fixture
def augmentation(pair_data, trained, tmp_path):
    """Kept / missing / planned synthesis on the tiny pair data, with one missing pose made unusable."""
    index = index_market(pair_data, splits=("train",))
    keypoints = read_annotations(pair_data / "market-annotation-train.csv")
    kept, missing = subsample(index, 0.4, seed=0)
    bad = missing["name"].iloc[0]
    keypoints[bad] = keypoints[bad].copy()
    keypoints[bad][8] = -1  # right hip missing -> no torso -> unusable target pose
    plan = select_conditions(missing, kept, "random", seed=0)
    return index, keypoints, kept, missing, plan, bad


def test_synthesis_writes_exactly_the_missing_set_and_resumes(pair_data, trained, augmentation, tmp_path):
    _, keypoints, kept, missing, plan, bad = augmentation
    images = pair_data / "bounding_box_train"
    planned = plan_synthesis(plan, keypoints, images, unusable_pose="skip")
    assert planned.set_index("name").loc[bad, "action"] == "skip"
    out = tmp_path / "generated"
    manifest = synthesize(planned, keypoints, checkpoint=trained, images_dir=images, out_dir=out, device="cpu",
                          shard_size=2, batch_size=2, seed=0)
    generated = set(missing["name"]) - {bad}
    assert {p.name for p in out.iterdir()} == generated
    assert all(Image.open(out / n).size == Image.open(images / n).size for n in generated)
    assert list(manifest["name"]) == list(missing["name"])
    assert (manifest.set_index("name").loc[bad, "status"], (manifest["status"] == "generated").sum()) == (
        "skipped", len(generated))
    assert set(manifest.columns) >= {"name", "condition", "target", "checkpoint_sha256", "seed", "status"}
    stamps = {n: (out / n).stat().st_mtime_ns for n in generated}
    synthesize(planned, keypoints, checkpoint=trained, images_dir=images, out_dir=out, device="cpu")
    assert {n: (out / n).stat().st_mtime_ns for n in generated} == stamps  # a rerun rewrites nothing

    copied = plan_synthesis(plan, keypoints, images, unusable_pose="copy_condition")
    out2 = tmp_path / "generated2"
    m2 = synthesize(copied, keypoints, checkpoint=trained, images_dir=images, out_dir=out2, device="cpu")
    row = m2.set_index("name").loc[bad]
    assert row["status"] == "copied_condition"
    assert (out2 / bad).read_bytes() == (images / row["condition"]).read_bytes()

    merged = tmp_path / "augmented"
    table = merge_training_set(kept, manifest, pair_data, merged)
    assert sorted(table["name"]) == sorted(set(kept["name"]) | generated)
    assert set(table[table["source"] == "generated"]["name"]) == generated
    reread = index_market(merged, splits=("train",))
    assert sorted(reread["name"]) == sorted(table["name"])
    assert pd.read_csv(merged / "manifest.csv")["source"].value_counts().to_dict() == {
        "real": len(kept), "generated": len(generated)}
    with pytest.raises(FileExistsError, match="already exists"):
        merge_training_set(kept, manifest, pair_data, merged)


def test_copy_control_matches_the_synthesis_set_with_condition_copies(pair_data, augmentation, tmp_path):
    _, keypoints, kept, missing, plan, bad = augmentation
    images = pair_data / "bounding_box_train"
    planned = plan_synthesis(plan, keypoints, images, unusable_pose="skip")
    out = tmp_path / "copies"
    manifest = copy_control(planned, images_dir=images, out_dir=out, seed=0)
    copied = set(missing["name"]) - {bad}  # the rows synthesis would generate; its skips stay skipped
    assert {p.name for p in out.iterdir()} == copied
    rows = manifest.set_index("name")
    assert rows.loc[bad, "status"] == "skipped" and (manifest["status"] == "copied_condition").sum() == len(copied)
    for name in copied:
        assert (out / name).read_bytes() == (images / rows.loc[name, "condition"]).read_bytes()
    assert (manifest["checkpoint"] == "").all()
    table = merge_training_set(kept, manifest, pair_data, tmp_path / "control")
    assert table["source"].value_counts().to_dict() == {"real": len(kept), "copied": len(copied)}


def test_synthesis_on_a_local_cluster_of_two_processes(pair_data, trained, augmentation, tmp_path):
    _, keypoints, _, missing, plan, bad = augmentation
    images = pair_data / "bounding_box_train"
    planned = plan_synthesis(plan, keypoints, images)
    local = synthesize(planned, keypoints, checkpoint=trained, images_dir=images, out_dir=tmp_path / "a",
                       device="cpu", scheduler="local", workers=2, shard_size=2)
    inproc = synthesize(planned, keypoints, checkpoint=trained, images_dir=images, out_dir=tmp_path / "b",
                        device="cpu", shard_size=3)
    assert local["status"].tolist() == inproc["status"].tolist()
    for name in set(missing["name"]) - {bad}:  # same generator, same inputs: same pixels on any worker
        a = np.asarray(Image.open(tmp_path / "a" / name), dtype=int)
        b = np.asarray(Image.open(tmp_path / "b" / name), dtype=int)
        assert np.abs(a - b).max() <= 2
