"""SynthMarket: layout and naming, splits, CSV coverage, determinism, keypoints on the drawn person."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.synthmarket_difficulty import colour_features, keep_portion, market_map
from poseformats.annotations import read_annotations, read_pairs
from poseformats.keypoints import (
    L_ELBOW,
    L_EYE,
    L_SHOULDER,
    L_WRIST,
    MISSING,
    NOSE,
    R_ELBOW,
    R_EYE,
    R_SHOULDER,
    R_WRIST,
)  # fmt: skip
from runtime.errors import ConfigError
from synthmarket import ConfigMismatchError, SynthMarketConfig, generate_synthmarket
from synthmarket.__main__ import main
from synthmarket.appearance import GENES, _signature, mutate, sample_appearance
from synthmarket.camera import jpeg_bytes, make_cameras
from synthmarket.contact_sheet import write_contact_sheet
from synthmarket.dataset import render_job
from synthmarket.render import Shot, render
from synthmarket.shots import sample_shot, sample_track
from synthmarket.skeleton import VIEW_YAW, Pose

MARKET = re.compile(r"^(-1|\d+)_c(\d)s(\d)_(\d+)_(\d+)\.jpg$")
FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
MAGENTA = np.array([255.0, 0.0, 255.0])


def tiny(**overrides) -> SynthMarketConfig:
    values = dict(n_train_ids=4, n_test_ids=4, max_cameras=3, max_images_per_camera=2, n_distractors=4,
                  n_junk=3, test_pairs=40, workers=1, progress=False)
    values.update(overrides)
    return SynthMarketConfig(**values)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "market"
    generate_synthmarket(out, tiny())
    return out


def _files(root: Path, folder: str) -> list[str]:
    return sorted(p.name for p in (root / folder).glob("*.jpg"))


def _ids(names: list[str]) -> set[int]:
    return {int(MARKET.match(n).group(1)) for n in names}


def test_layout_and_market_names(root: Path) -> None:
    for folder in FOLDERS:
        names = _files(root, folder)
        assert names, folder
        for name in names:
            m = MARKET.match(name)
            assert m, name
            assert 1 <= int(m.group(2)) <= 6
        with Image.open(root / folder / names[0]) as im:
            assert (im.format, im.size) == ("JPEG", (64, 128))
    gallery = _files(root, "bounding_box_test")
    assert sum(n.startswith("0000_") for n in gallery) == 4
    assert sum(n.startswith("-1_") for n in gallery) == 3
    for folder in ("bounding_box_train", "query"):
        assert not any(n.startswith(("0000_", "-1_")) for n in _files(root, folder))
    assert (root / "synthmarket.json").is_file() and (root / "manifest.csv").is_file()


def test_splits_disjoint_and_queries_matched_in_another_camera(root: Path) -> None:
    train = _ids(_files(root, "bounding_box_train"))
    gallery_names = [n for n in _files(root, "bounding_box_test") if not n.startswith(("0000_", "-1_"))]
    test = _ids(gallery_names)
    assert len(train) == 4 and len(test) == 4 and not train & test
    cams: dict[int, set[int]] = {}
    for n in gallery_names:
        m = MARKET.match(n)
        cams.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    queries = _files(root, "query")
    assert _ids(queries) == test
    for q in queries:
        m = MARKET.match(q)
        assert cams[int(m.group(1))] - {int(m.group(2))}, f"{q} has no match in another camera"


def test_annotations_and_manifest_cover_exactly_the_images(root: Path) -> None:
    train = read_annotations(root / "market-annotation-train.csv")
    test = read_annotations(root / "market-annotation-test.csv")
    assert list(train) == _files(root, "bounding_box_train")
    assert list(test) == _files(root, "bounding_box_test")
    manifest = pd.read_csv(root / "manifest.csv")
    on_disk = {f"{folder}/{n}" for folder in FOLDERS for n in _files(root, folder)}
    assert set(manifest["file"]) == on_disk and len(manifest) == len(on_disk)
    for kp in list(train.values()) + list(test.values()):
        present = kp[:, 0] != MISSING
        assert ((kp[present] >= 0) & (kp[present] < [128, 64])).all()
    pairs = read_pairs(root / "market-pairs-test.csv", known_names=test)
    assert 0 < len(pairs) <= 40
    assert (pairs["from"].str.split("_").str[0] == pairs["to"].str.split("_").str[0]).all()
    assert not pairs["from"].str.startswith(("0000", "-1")).any()
    assert len(read_pairs(root / "market-pairs-train.csv", known_names=train)) > 0


def test_csv_keypoints_are_the_drawn_ones(root: Path) -> None:
    """Re-rendering a job gives the very keypoints and pixels that were written."""
    from synthmarket.dataset import make_plan

    cfg = tiny()
    plan = make_plan(cfg)
    train = read_annotations(root / "market-annotation-train.csv")
    job = next(j for j in plan.jobs if j.split == "train")
    image, keypoints, _ = render_job(job, cfg.content(), plan.appearances)
    np.testing.assert_array_equal(keypoints, train[job.name])
    quality = make_cameras(cfg.seed)[job.camera - 1].jpeg_quality
    assert jpeg_bytes(image, quality) == (root / "bounding_box_train" / job.name).read_bytes()


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "synthmarket.json"}


def test_same_seed_same_bytes_whatever_the_workers(root: Path, tmp_path: Path) -> None:
    generate_synthmarket(tmp_path / "again", tiny(workers=2))
    assert _all_bytes(tmp_path / "again") == _all_bytes(root)


def test_different_seed_different_dataset(root: Path, tmp_path: Path) -> None:
    generate_synthmarket(tmp_path / "other", tiny(seed=1))
    mine, theirs = _all_bytes(root), _all_bytes(tmp_path / "other")
    assert set(mine) != set(theirs)
    images = lambda b: {v for k, v in b.items() if k.endswith(".jpg")}  # noqa: E731
    assert not images(mine) & images(theirs)


def test_finished_root_is_reused_and_other_settings_refused(root: Path) -> None:
    stamp = (root / "synthmarket.json").stat().st_mtime_ns
    manifest = generate_synthmarket(root, tiny(workers=3, progress=True))  # run keys do not count
    assert len(manifest) == sum(len(_files(root, f)) for f in FOLDERS)
    assert (root / "synthmarket.json").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigMismatchError, match=r"palette_size.*another out="):
        generate_synthmarket(root, tiny(palette_size=4))


def _standing(arms_hanging: bool = True) -> Pose:
    return Pose(kind="stand", hip_flex=(0.0, 0.0), hip_abd=(0.05, 0.05), knee=(0.0, 0.0),
                shoulder_flex=(0.0, 0.0), shoulder_abd=(0.06, 0.06), elbow=(0.1, 0.1))


def _shot(view: str, **kw) -> Shot:
    values = dict(view=view, yaw=VIEW_YAW[view], pose=_standing(), stature=0.86, centre_x=0.5, feet_y=0.97,
                  bg_centre=0.5)
    values.update(kw)
    return Shot(**values)


def _plain(appearance, camera, shot, seed=0):
    background = np.broadcast_to(MAGENTA, (128, 64, 3)).astype(np.float32)
    return render(appearance, camera, shot, np.random.default_rng(seed), background=background,
                  camera_effects=False)


@pytest.fixture(scope="module")
def cameras():
    return make_cameras(0)


def test_visible_keypoints_land_on_the_person(cameras) -> None:
    """Drawn on a known magenta background with no camera effects, the pixel under every visible
    joint is person: inside the kept mask and clearly not background."""
    rng = np.random.default_rng(0)
    checked = 0
    for i in range(120):
        appearance = sample_appearance(rng)
        shot = sample_shot(sample_track(rng), i % 4, rng, occlusion_prob=0.3, misalign_prob=0.3)
        out = _plain(appearance, cameras[i % 6], shot, seed=i)
        for y, x in out.keypoints[out.keypoints[:, 0] != MISSING]:
            assert out.person_mask[y, x]
            assert np.abs(out.image[y, x].astype(float) - MAGENTA).max() > 40, (i, y, x)
            checked += 1
    assert checked > 120 * 10  # most joints are seen


def test_back_view_swaps_left_and_right(cameras) -> None:
    a = sample_appearance(np.random.default_rng(1))
    front = _plain(a, cameras[0], _shot("front")).keypoints
    back = _plain(a, cameras[0], _shot("back")).keypoints
    assert front[L_SHOULDER, 1] > front[R_SHOULDER, 1]  # the person's left is the image's right
    assert back[L_SHOULDER, 1] < back[R_SHOULDER, 1]
    assert (front[[NOSE, R_EYE, L_EYE], 0] != MISSING).all()
    assert (back[[NOSE, R_EYE, L_EYE], 0] == MISSING).all()  # no face on the back of a head


def test_far_arm_behind_the_torso_is_missing(cameras) -> None:
    a = dataclasses.replace(sample_appearance(np.random.default_rng(2)), bag="none")
    left = _plain(a, cameras[0], _shot("left")).keypoints  # the left side faces the camera
    assert (left[[L_ELBOW, L_WRIST], 0] != MISSING).all()
    assert (left[[R_ELBOW, R_WRIST], 0] == MISSING).all()
    assert (left[[R_SHOULDER, L_SHOULDER], 0] != MISSING).all()  # shoulders still found (PATN pairs)


def test_joints_outside_the_box_are_missing(cameras) -> None:
    a = sample_appearance(np.random.default_rng(3))
    out = _plain(a, cameras[0], _shot("front", centre_x=1.0))
    visible = out.keypoints[:, 0] != MISSING
    outside = out.joints[:, 1] >= 64
    assert outside.any() and not (visible & outside).any()
    assert (out.keypoints[visible, 1] < 64).all()


def test_lookalikes_differ_in_exactly_the_requested_attributes() -> None:
    rng = np.random.default_rng(4)
    for n in (1, 2, 3):
        base = sample_appearance(rng)
        twin = mutate(base, rng, n)
        differ = [g for g in GENES if _signature(twin, g) != _signature(base, g)]
        assert len(differ) == n, differ


def test_market_map_known_answer() -> None:
    # gallery: id 1 cam 2 (hit), id 2 (miss), id 1 cam 3 (hit), junk (dropped), id 1 cam 1 (same camera: dropped)
    dist = np.array([[0.1, 0.2, 0.3, 0.05, 0.0]])
    g_ids, g_cams = np.array([1, 2, 1, -1, 1]), np.array([2, 2, 3, 2, 1])
    m_ap, rank1 = market_map(dist, np.array([1]), g_ids, np.array([1]), g_cams)
    assert m_ap == pytest.approx((1 / 1 + 2 / 3) / 2) and rank1 == 1.0
    assert sorted(keep_portion(np.array([5, 5, 5, 5, 5, 7]), 0.2, seed=0).tolist())[-1] == 5
    feats = colour_features(np.zeros((2, 128, 64, 3), dtype=np.uint8))
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)


def test_config_is_checked_and_cli_errors_exit_2(capsys) -> None:
    with pytest.raises(ConfigError, match="min_cameras"):
        SynthMarketConfig(min_cameras=1)
    with pytest.raises(SystemExit) as exc:
        main(["n_train_ids=0"])
    assert exc.value.code == 2 and "n_train_ids" in capsys.readouterr().err


def test_contact_sheet(tmp_path: Path) -> None:
    path = tmp_path / "sheet.png"
    write_contact_sheet(str(path), SynthMarketConfig(), n_ids=2, poses=1)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.height > 2 * 128 and im.width > 6 * 2 * 64
