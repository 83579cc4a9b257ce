"""The pose control: a generator that ignores the pose scores 0, an oracle scores its known gap."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pona_model.metrics.pose_control import derangement, pose_control
from pona_model.pair_dataset import PairDataset


@pytest.mark.parametrize("n", [2, 3, 10, 201])
def test_derangement_moves_every_pair(n):
    d = derangement(n, seed=n)
    assert sorted(d) == list(range(n)) and not (d == np.arange(n)).any()
    assert (derangement(n, seed=n) == d).all()


def test_derangement_needs_two_pairs():
    with pytest.raises(ValueError, match="at least 2 pairs"):
        derangement(1, seed=0)


def _dataset(pair_data):
    return PairDataset(pair_data / "bounding_box_train", pair_data / "market-annotation-train.csv",
                       pair_data / "market-pairs-train.csv", image_size=(32, 16))


def _fake(generate):
    return SimpleNamespace(device=torch.device("cpu"), generate=generate)


def test_a_generator_that_ignores_the_pose_scores_zero(pair_data):
    dataset = _dataset(pair_data)
    result = pose_control(_fake(lambda cond, kc, kt: cond.clone()), dataset, batch_size=4)
    assert result["pose_gain_l1"] == 0.0 and result["pose_sensitivity_l1"] == 0.0
    items = [dataset[i] for i in range(len(dataset))]
    expected = np.mean([(it["condition"] - it["target"]).abs().mean().item() / 2 for it in items])
    assert result["l1_true_pose"] == pytest.approx(expected, rel=1e-5)
    assert result["n_pairs"] == len(dataset)


def test_an_oracle_of_the_target_pose_scores_the_gap_to_other_targets(pair_data):
    dataset = _dataset(pair_data)
    items = [dataset[i] for i in range(len(dataset))]
    by_pose = {it["kp_target"].numpy().tobytes(): it["target"] for it in items}

    def oracle(cond, kc, kt):  # draws exactly the image whose pose it is given
        return torch.stack([by_pose[k.numpy().tobytes()] for k in kt])

    result = pose_control(_fake(oracle), dataset, seed=3, batch_size=3)
    other = derangement(len(items), seed=3)
    gap = np.mean([(items[i]["target"] - items[j]["target"]).abs().mean().item() / 2 for i, j in enumerate(other)])
    assert result["l1_true_pose"] == 0.0
    assert result["pose_gain_l1"] == pytest.approx(gap, rel=1e-5)
    assert result["pose_sensitivity_l1"] == pytest.approx(gap, rel=1e-5)
