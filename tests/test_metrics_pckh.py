"""PCKh on hand-made keypoints, including the skip rule for fewer than two head joints."""

from __future__ import annotations

import numpy as np
import pytest

from pona_model.metrics.pckh import PCKhAccumulator, correct_joints, head_size, pckh
from poseformats.keypoints import L_EYE, L_WRIST, NECK, NOSE, R_ANKLE, R_EYE, R_WRIST


def _empty() -> np.ndarray:
    return np.full((18, 2), -1, dtype=np.int64)


def _ground_truth() -> np.ndarray:
    """Head joints spanning a box 8 wide (x 10..18) and 12 high (y 20..32); thresholds 4 and 6."""
    gt = _empty()
    gt[NOSE] = (26, 14)
    gt[R_EYE] = (20, 10)
    gt[L_EYE] = (20, 18)
    gt[NECK] = (32, 14)
    gt[R_WRIST] = (60, 5)
    gt[L_WRIST] = (60, 25)
    return gt  # 6 joints present


def test_head_box_and_thresholds():
    assert head_size(_ground_truth()) == (8, 12)
    pred = _ground_truth()
    pred[R_WRIST] += (5, 3)    # |dy| 5 < 6, |dx| 3 < 4: correct
    pred[L_WRIST] += (0, 4)    # |dx| 4 is not < 4: wrong (strict)
    pred[NECK] += (6, 0)       # |dy| 6 is not < 6: wrong
    pred[NOSE] = (-1, -1)      # missing in the prediction: wrong
    pred[R_ANKLE] = (90, 10)   # absent from the ground truth: counts nowhere
    assert correct_joints(pred, _ground_truth()) == (2 + 1, 6)  # eyes + right wrist, of 6


def test_fewer_than_two_head_joints_skips_the_pair():
    gt = _empty()
    gt[NOSE] = (10, 10)
    gt[R_WRIST] = (40, 5)
    assert head_size(gt) is None and correct_joints(gt, gt) is None
    acc = PCKhAccumulator()
    acc.add(gt, gt)                        # skipped: only the nose
    acc.add(_ground_truth(), _ground_truth())  # 6 of 6
    far = _ground_truth() + 50
    acc.add(far, _ground_truth())          # 0 of 6
    assert (acc.correct, acc.total, acc.pairs_used, acc.pairs_skipped) == (6, 12, 2, 1)
    assert acc.value == pytest.approx(0.5)
    assert acc.result()["pairs_skipped_head_rule"] == 1


def test_pckh_is_a_ratio_of_totals_and_none_when_nothing_is_usable():
    small = _empty()
    small[R_EYE], small[L_EYE] = (10, 10), (10, 20)  # w 10, h 0: no |dy| < 0 exists, so nothing is correct
    assert correct_joints(small, small) == (0, 2)
    assert pckh([_ground_truth(), small], [_ground_truth(), small]) == pytest.approx(6 / 8)
    assert pckh([_empty()], [_empty()]) is None
    with pytest.raises(ValueError, match="shape"):
        correct_joints(np.zeros((17, 2)), _ground_truth())
