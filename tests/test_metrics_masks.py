"""The mask-SSIM / mask-IS body mask against hand-drawn expectations, and against PATN's construction
rebuilt from scikit-image primitives."""

from __future__ import annotations

import numpy as np
import pytest

from pona_model.metrics.masks import apply_mask, body_mask
from poseformats.keypoints import MASK_LIMBS, N_JOINTS


def _picture(rows: str) -> np.ndarray:
    return np.array([[c == "#" for c in line] for line in rows.split()], dtype=bool)


def _pose(**joints: tuple[int, int]) -> np.ndarray:
    kp = np.full((N_JOINTS, 2), -1, dtype=np.int32)
    index = {"nose": 0, "neck": 1, "rsho": 2, "rhip": 8}
    for name, yx in joints.items():
        kp[index[name]] = yx
    return kp


# Neck (7, 8) and right shoulder (13, 8), a mask edge: the rectangle of half-width 4 spans rows 7..13 and
# columns 4..12 (edges included); the discs of radius 4 (centres strictly closer than 4) add caps of
# widths 7, 7, 5 above and below; the 5 x 5 closing adds nothing to this convex-ish shape.
ONE_LIMB = """
.................
.................
.................
.................
......#####......
.....#######.....
.....#######.....
....#########....
....#########....
....#########....
....#########....
....#########....
....#########....
....#########....
.....#######.....
.....#######.....
......#####......
.................
.................
.................
.................
"""

# Nose (7, 7) and right hip (7, 15) are not joined by a mask edge: two discs (columns 4..10 and 12..18 on
# the middle row) with a one-column gap, which the 5 x 5 closing fills, with the notches above and below.
TWO_DISCS_CLOSED = """
.......................
.......................
.......................
.......................
.....#############.....
....###############....
....###############....
....###############....
....###############....
....###############....
.....#############.....
.......................
.......................
.......................
.......................
"""


def test_mask_of_one_limb_matches_the_drawing():
    np.testing.assert_array_equal(body_mask(_pose(neck=(7, 8), rsho=(13, 8)), 21, 17), _picture(ONE_LIMB))


def test_closing_fills_the_gap_between_discs():
    np.testing.assert_array_equal(body_mask(_pose(nose=(7, 7), rhip=(7, 15)), 15, 23), _picture(TWO_DISCS_CLOSED))


def test_missing_joints_draw_nothing_and_a_lone_joint_draws_a_disc():
    assert not body_mask(np.full((N_JOINTS, 2), -1), 20, 20).any()
    lone = body_mask(_pose(neck=(10, 10), rsho=(-1, -1)), 21, 21)
    assert lone.sum() == 45  # the radius-4 disc: 45 pixel centres closer than 4, closing adds none
    assert lone[10, 10] and not lone[10, 14] and lone[10, 13]


def test_apply_mask_blacks_out_the_background():
    images = np.full((2, 4, 3, 3), 200, np.uint8)
    masks = np.zeros((2, 4, 3), bool)
    masks[0, 1, 2] = True
    out = apply_mask(images, masks)
    assert out.dtype == np.uint8 and out[0, 1, 2].tolist() == [200, 200, 200] and out.sum() == 600


def _patn_reference(kp: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """PATN's construction with scikit-image: polygons, discs, dilation then erosion by a 5 x 5 square."""
    from skimage.draw import disk, polygon
    from skimage.morphology import dilation, erosion, footprint_rectangle

    mask = np.zeros(shape, bool)
    for f, t in MASK_LIMBS:
        if (kp[f] == -1).any() or (kp[t] == -1).any() or (kp[f] == kp[t]).all():
            continue
        normal = (kp[f] - kp[t]).astype(float)
        normal = np.array([-normal[1], normal[0]])
        normal = 4 * normal / np.linalg.norm(normal)
        corners = np.array([kp[f] + normal, kp[f] - normal, kp[t] - normal, kp[t] + normal])
        rr, cc = polygon(corners[:, 0], corners[:, 1], shape=shape)
        mask[rr, cc] = True
    for joint in kp:
        if (joint != -1).all():
            rr, cc = disk((joint[0], joint[1]), 4, shape=shape)
            mask[rr, cc] = True
    return erosion(dilation(mask, footprint_rectangle((5, 5))), footprint_rectangle((5, 5)))


def test_mask_agrees_with_scikit_image_construction_on_random_poses():
    pytest.importorskip("skimage", reason="scikit-image (the dev extra) rebuilds PATN's mask as a reference")
    rng = np.random.default_rng(0)
    exact, worst = 0, 0
    for _ in range(100):
        kp = np.stack([rng.integers(0, 128, N_JOINTS), rng.integers(0, 64, N_JOINTS)], axis=1)
        kp[rng.random(N_JOINTS) < 0.2] = -1
        differ = int((body_mask(kp, 128, 64) != _patn_reference(kp, (128, 64))).sum())
        exact += differ == 0
        worst = max(worst, differ)
    # scikit-image's polygon decides pixel centres lying exactly on an edge by floating-point rounding of
    # the corners; body_mask includes them. Only such ties can differ: a few pixels in a few masks.
    assert exact >= 90 and worst <= 8
