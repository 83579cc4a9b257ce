"""Does the generator follow the target pose? A control that needs no pose estimator.

PCKh needs an estimator that finds a person in the generated image; on blurry early or CPU-budget
generators it finds none, and PCKh then says nothing about the pose pathway. This control asks the
generator itself: each pair is generated twice from the same condition image, once with its own
target pose and once with the target pose of another pair (a seeded derangement, so never its own),
and reports the L1 to the real target for both (images in [0, 1], as ``pixel.l1``) and the L1
between the two outputs.

- ``pose_gain_l1`` = L1(shuffled pose) - L1(true pose): > 0 when the true pose brings the output
  closer to the target, i.e. the generator transfers pose; about 0 when it does not.
- ``pose_sensitivity_l1`` = L1(output with true pose, output with shuffled pose): how much the
  output moves when only the target pose changes; about 0 when the pose input is ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from pona_model.inference import LoadedGenerator
from pona_model.pair_dataset import PairDataset

POSE_CONTROL_SETTINGS: dict[str, object] = {
    "shuffle": "target keypoints of another pair (a seeded derangement); same condition image and pose",
    "scale": "images in [0, 1] at the generator's size",
    "pose_gain_l1": "mean L1 to the real target with the shuffled pose minus with the true pose",
    "pose_sensitivity_l1": "mean L1 between the outputs with the true and the shuffled pose",
}


def derangement(n: int, seed: int) -> np.ndarray:
    """A permutation of range(n) with no fixed point (n >= 2): a random cyclic shift of a shuffle."""
    if n < 2:
        raise ValueError(f"the pose control needs at least 2 pairs, got {n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    shift = int(rng.integers(1, n))
    out = np.empty(n, dtype=np.int64)
    out[order] = order[(np.arange(n) + shift) % n]
    return out


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image mean |a - b| for images in [-1, 1], on the [0, 1] scale."""
    return (a - b).abs().flatten(1).mean(1) / 2


def pose_control(model: LoadedGenerator, dataset: PairDataset, *, seed: int = 0, batch_size: int = 32
                 ) -> dict[str, Any]:
    """Generate every pair of ``dataset`` with its true and with a shuffled target pose."""
    n = len(dataset)
    other = torch.as_tensor(derangement(n, seed))
    kp_targets = torch.stack([dataset.target_keypoints(i) for i in range(n)])
    true_l1, shuffled_l1, moved = [], [], []
    index = 0
    for batch in DataLoader(dataset, batch_size=batch_size):
        k = batch["condition"].shape[0]
        shuffled = kp_targets[other[index : index + k]]
        index += k
        target = batch["target"].to(model.device)
        with_true = model.generate(batch["condition"], batch["kp_condition"], batch["kp_target"])
        with_other = model.generate(batch["condition"], batch["kp_condition"], shuffled)
        true_l1.append(_l1(with_true, target).cpu())
        shuffled_l1.append(_l1(with_other, target).cpu())
        moved.append(_l1(with_true, with_other).cpu())
    t, s, m = (torch.cat(x).double() for x in (true_l1, shuffled_l1, moved))
    return {"pose_gain_l1": float((s - t).mean()), "pose_sensitivity_l1": float(m.mean()),
            "l1_true_pose": float(t.mean()), "l1_shuffled_pose": float(s.mean()), "n_pairs": n, "seed": seed,
            "settings": POSE_CONTROL_SETTINGS}
