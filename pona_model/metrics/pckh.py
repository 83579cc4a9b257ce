"""PCKh as PATN's evaluation computes it (Zhu et al.; docs/evaluation.md).

For a pair, the head box is spanned by the ground-truth head joints (nose, neck, both eyes, both ears)
that are present: w = x_max - x_min, h = y_max - y_min. With fewer than two of them present the pair is
skipped (it counts neither way). A joint is correct when it is present in both the prediction (the
pose estimated on the generated image) and the ground truth, and |dx| < alpha w and |dy| < alpha h,
alpha = 0.5. PCKh = correct joints / ground-truth joints present, summed over all pairs not skipped
(a ratio of totals, not a mean of per-pair ratios).

The ground truth is either the pose estimated on the real target with the same estimator, or given
keypoints (the annotation file): ``PCKhAccumulator`` takes both kinds alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poseformats.keypoints import HEAD_JOINTS, JOINT_NAMES, MISSING, N_JOINTS

ALPHA = 0.5
MIN_HEAD_JOINTS = 2

PCKH_SETTINGS: dict[str, object] = {
    "alpha": ALPHA,
    "head_joints": [JOINT_NAMES[j] for j in HEAD_JOINTS],
    "min_head_joints": MIN_HEAD_JOINTS,
    "rule": "|dx| < alpha * head width and |dy| < alpha * head height (strict), joint present in both",
    "denominator": "ground-truth joints present, summed over the pairs not skipped",
}


def _pose(kp: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(kp)
    if a.shape != (N_JOINTS, 2):
        raise ValueError(f"{name} must be one pose (18, 2), got shape {a.shape}")
    return a.astype(np.int64)


def head_size(gt: np.ndarray) -> tuple[int, int] | None:
    """(w, h) of the box of the present ground-truth head joints; None with fewer than two."""
    kp = _pose(gt, "gt")
    head = kp[list(HEAD_JOINTS)]
    head = head[(head != MISSING).all(axis=1)]
    if len(head) < MIN_HEAD_JOINTS:
        return None
    return int(head[:, 1].max() - head[:, 1].min()), int(head[:, 0].max() - head[:, 0].min())


def correct_joints(pred: np.ndarray, gt: np.ndarray, alpha: float = ALPHA) -> tuple[int, int] | None:
    """(correct, ground-truth joints present) for one pair; None when the pair is skipped."""
    p, g = _pose(pred, "pred"), _pose(gt, "gt")
    size = head_size(g)
    if size is None:
        return None
    w, h = size
    p_ok = (p != MISSING).all(axis=1)
    g_ok = (g != MISSING).all(axis=1)
    d = np.abs(p - g)
    right = p_ok & g_ok & (d[:, 1] < alpha * w) & (d[:, 0] < alpha * h)
    return int(right.sum()), int(g_ok.sum())


@dataclass
class PCKhAccumulator:
    """Running totals over pairs; ``result()`` is the JSON-ready summary."""

    alpha: float = ALPHA
    correct: int = 0
    total: int = 0
    pairs_used: int = 0
    pairs_skipped: int = 0

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        counts = correct_joints(pred, gt, self.alpha)
        if counts is None:
            self.pairs_skipped += 1
            return
        self.correct += counts[0]
        self.total += counts[1]
        self.pairs_used += 1

    @property
    def value(self) -> float | None:
        return self.correct / self.total if self.total else None

    def result(self) -> dict[str, object]:
        return {"value": self.value, "correct_joints": self.correct, "gt_joints": self.total,
                "pairs_used": self.pairs_used, "pairs_skipped_head_rule": self.pairs_skipped}


def pckh(preds: list[np.ndarray], gts: list[np.ndarray], alpha: float = ALPHA) -> float | None:
    """PCKh over pairs of (18, 2) poses; None when no pair is usable."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predicted poses for {len(gts)} ground-truth poses")
    acc = PCKhAccumulator(alpha)
    for p, g in zip(preds, gts):
        acc.add(p, g)
    return acc.value
