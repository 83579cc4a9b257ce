"""The limb-region score (``pona_model.metrics.limbs``): known answers on hand-built poses and images, the
target scoring 1 and the condition 0, a camera's gain not moving it, and its place in the evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pona_model.evaluation.folder import evaluate_folder
from pona_model.evaluation.settings import MetricSettings
from pona_model.generate import output_name
from pona_model.metrics.limbs import BAR, limb_margins, limb_region, limb_region_score, pair_region
from poseformats.annotations import read_annotations, read_pairs
from poseformats.keypoints import MISSING, N_JOINTS, R_ELBOW, R_SHOULDER
from tests.conftest import _person_keypoints, make_pair_data


def _picture(rows: str) -> np.ndarray:
    return np.array([[c == "#" for c in line] for line in rows.split()], dtype=bool)


def _arm(shoulder: tuple[int, int], elbow: tuple[int, int]) -> np.ndarray:
    kp = np.full((N_JOINTS, 2), MISSING, dtype=np.int64)
    kp[R_SHOULDER], kp[R_ELBOW] = shoulder, elbow
    return kp


# Target: a right upper arm from (2, 2) to (2, 6); condition: from (2, 2) down to (6, 2). Radius 1: pixel
# centres at distance <= 1 from the segment (rows 1..3 along it, one pixel beyond each end).
TARGET, CONDITION = _arm((2, 2), (2, 6)), _arm((2, 2), (6, 2))
TARGET_REGION = """
..........
..#####...
.#######..
..#####...
..........
..........
..........
..........
"""
# ... minus the condition's region (columns 1..3 on rows 2..6, and (1, 2), (7, 2)).
PAIR_REGION = """
..........
...####...
....####..
....###...
..........
..........
..........
..........
"""


def test_regions_by_hand():
    assert (limb_region(TARGET, 8, 10, radius=1) == _picture(TARGET_REGION)).all()
    assert (pair_region(TARGET, CONDITION, 8, 10, radius=1) == _picture(PAIR_REGION)).all()
    assert not limb_region(np.full((N_JOINTS, 2), MISSING), 8, 10, radius=1).any()  # no limb, no region
    assert limb_region(TARGET, 64, 32).sum() == limb_region(TARGET, 64, 32, radius=1).sum()  # height / 64


def _hand_images() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey 8 x 10 images: the target with its arm (rows 1..3, columns 2..6) at 200, the condition with its arm
    (rows 2..6, columns 1..3) at 200, and a generated image drawing the target's arm at 180."""
    target, condition, generated = (np.full((8, 10, 3), 50, np.uint8) for _ in range(3))
    target[1:4, 2:7] = 200
    condition[2:7, 1:4] = 200
    generated[1:4, 2:7] = 180
    return target, condition, generated


def test_a_hand_built_pair_has_the_known_margin():
    target, condition, generated = _hand_images()
    m = limb_margins(generated[None], target[None], condition[None], TARGET[None], CONDITION[None], radius=1)
    # 11 region pixels: 10 on the target's arm (generated 180: 20 from the target, 130 from the condition's
    # grey) and (2, 7) beyond the arm's end, grey in all three.
    assert m["pixels"][0] == 11
    assert m["margin_plain"][0] == pytest.approx((130 - 20) * 10 / 11 / 255)
    assert m["margin"][0] > 0
    moved = np.full_like(generated, 50)
    moved[2:7, 1:4] = 180  # the condition's arm copied: closer to the condition
    assert limb_margins(moved[None], target[None], condition[None], TARGET[None], CONDITION[None],
                        radius=1)["margin_plain"][0] < 0


def _pairs(n: int = 24, seed: int = 0) -> dict[str, np.ndarray]:
    """Random 64 x 32 images and upright poses, the condition's shifted 4 pixels to the side."""
    rng = np.random.default_rng(seed)
    kp_t = np.stack([_person_keypoints(rng, 64, 32) for _ in range(n)]).astype(np.int64)
    kp_c = np.stack([_person_keypoints(rng, 64, 32) for _ in range(n)]).astype(np.int64)
    kp_c[..., 1] = np.clip(kp_c[..., 1] + 4, 0, 31)
    images = rng.integers(0, 256, (3, n, 64, 32, 3), dtype=np.uint8)
    return {"target": images[0], "condition": images[1], "other": images[2], "kp_t": kp_t, "kp_c": kp_c}


@pytest.mark.parametrize("key", ["margin", "margin_plain"])
def test_the_target_scores_1_and_the_condition_0(key):
    p = _pairs()

    def score(generated: np.ndarray) -> dict:
        m = limb_margins(generated, p["target"], p["condition"], p["kp_t"], p["kp_c"])
        return limb_region_score(m[key])

    assert score(p["target"])["value"] == 1.0 and score(p["target"])["reaches_bar"]
    assert score(p["condition"])["value"] == 0.0 and not score(p["condition"])["reaches_bar"]
    assert score(p["target"])["pairs_scored"] == len(p["target"]) and BAR == 0.8


def test_a_cameras_gain_does_not_move_the_score_but_decides_plain_l1():
    """Red limbs on grey, the condition's 4 pixels to the side: the target seen through another camera (a
    per-channel gain) is the perfect generated image that camera would give. Plain L1 calls it closer to the
    condition's grey background; with the gain it is the target again."""
    p = _pairs(8)
    rng = np.random.default_rng(1)

    def scene(kp: np.ndarray) -> np.ndarray:
        image = np.clip(rng.normal(90, 3, (64, 32, 3)), 0, 255)
        image[limb_region(kp, 64, 32, radius=1.5)] = (200, 60, 60)
        return image.round().astype(np.uint8)

    target = np.stack([scene(k) for k in p["kp_t"]])
    condition = np.stack([scene(k) for k in p["kp_c"]])
    camera = (target * np.array([0.5, 0.6, 0.7])).round().astype(np.uint8)
    m = limb_margins(camera, target, condition, p["kp_t"], p["kp_c"])
    assert limb_region_score(m["margin"])["value"] == 1.0
    assert limb_region_score(m["margin_plain"])["value"] == 0.0


def test_pairs_without_a_region_are_left_out():
    p = _pairs(4)
    same = p["kp_t"].copy()  # condition pose = target pose: every limb pixel is the condition's too
    m = limb_margins(p["other"], p["target"], p["condition"], p["kp_t"], same)
    assert np.isnan(m["margin"]).all() and (m["pixels"] == 0).all()
    entry = limb_region_score(m["margin"])
    assert entry["value"] is None and entry["pairs_left_out"] == 4 and "no pair" in entry["skipped"]
    equal = limb_margins(p["other"], p["target"], p["target"], p["kp_t"], p["kp_c"])  # target == condition
    assert np.isnan(equal["margin"]).all()


def test_limb_region_is_part_of_the_evaluation(tmp_path):
    root = make_pair_data(tmp_path / "data", n_ids=2, per_id=3, size=(64, 32))
    images = root / "bounding_box_train"
    pairs = read_pairs(root / "market-pairs-train.csv")
    keypoints = read_annotations(root / "market-annotation-train.csv")
    generated = tmp_path / "generated"
    generated.mkdir()
    for a, b in zip(pairs["from"], pairs["to"]):  # the targets themselves
        Image.open(images / b).convert("RGB").save(generated / f"{output_name(a, b)}.png")
    settings = MetricSettings(include=["l1", "limb_region"])
    result = evaluate_folder(generated, keypoints, images=images, pairs=pairs, settings=settings,
                             out=tmp_path / "eval" / "metrics.json", progress=False)
    entry = result["metrics"]["limb_region"]
    assert entry["value"] == 1.0 and entry["pairs_without_condition"] == 0
    assert entry["pairs_scored"] + entry["pairs_left_out"] == len(pairs) and entry["pairs_scored"] > 0
    assert result["scores"]["limb_region"] == 1.0
    assert "limb_margin" in (tmp_path / "eval" / "metrics_pairs.csv").read_text().splitlines()[0]
    identity = evaluate_folder(None, keypoints, images=images, pairs=pairs, baseline="identity", settings=settings,
                               progress=False)
    assert identity["metrics"]["limb_region"]["value"] == 0.0
