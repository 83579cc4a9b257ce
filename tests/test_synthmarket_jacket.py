"""SynthMarket's open jacket (``jacket_prob``): a look that depends on the view, layered on an identity
without changing anything else about it, and off by default."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from poseformats.keypoints import NECK
from synthmarket import SynthMarketConfig
from synthmarket.appearance import sample_appearance, with_jacket
from synthmarket.camera import make_cameras
from synthmarket.dataset import make_plan
from synthmarket.render import Shot, render
from synthmarket.skeleton import VIEW_YAW, Pose

MAGENTA = np.array([255.0, 0.0, 255.0])


def _plan(**kw):
    return make_plan(SynthMarketConfig(n_train_ids=12, n_test_ids=6, n_distractors=8, n_junk=0, **kw))


def test_off_by_default_and_layered_on_an_unchanged_identity() -> None:
    plain, dressed = _plan(), _plan(jacket_prob=1.0)
    assert all(a.jacket is None for a in plain.appearances.values())
    assert plain.jobs == dressed.jobs  # who is where, and every image, is planned the same
    for key, a in dressed.appearances.items():
        assert a.jacket is not None and a.jacket_name != a.upper_name, key
        assert dataclasses.replace(a, jacket=None, jacket_name="") == plain.appearances[key]
    assert "open jacket over" in dressed.appearances[dressed.train_ids[0]].summary()
    some = _plan(jacket_prob=0.5).appearances.values()
    assert 0 < sum(a.jacket is not None for a in some) < len(some)


def test_zero_probability_never_draws() -> None:
    a = sample_appearance(np.random.default_rng(3))
    rng = np.random.default_rng(0)
    assert with_jacket(a, rng, 0.0) is a
    assert rng.random() == np.random.default_rng(0).random()  # the stream was not touched


def _torso_colour(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Mean colour of a small patch on the body's axis just below the neck."""
    y, x = keypoints[NECK]
    return image[y + 6: y + 12, x - 2: x + 3].reshape(-1, 3).astype(float).mean(0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_front_shows_the_top_and_the_back_the_jacket(seed: int) -> None:
    """Drawn on magenta with no camera effects: from the front the chest is the top's colour, from
    behind the jacket's; without a jacket both views show the top."""
    base = dataclasses.replace(sample_appearance(np.random.default_rng(seed)), pattern="solid",
                               upper=(230, 230, 225), upper_name="white", bag="none")
    jacket = dataclasses.replace(base, jacket=(30, 40, 90), jacket_name="navy")
    camera = make_cameras(0)[0]
    pose = Pose(kind="stand", hip_flex=(0.0, 0.0), hip_abd=(0.05, 0.05), knee=(0.0, 0.0),
                shoulder_flex=(0.0, 0.0), shoulder_abd=(0.06, 0.06), elbow=(0.1, 0.1))

    def chest(a, view: str) -> np.ndarray:
        shot = Shot(view=view, yaw=VIEW_YAW[view], pose=pose, stature=0.86, centre_x=0.5, feet_y=0.97, bg_centre=0.5)
        out = render(a, camera, shot, np.random.default_rng(0), background=np.broadcast_to(MAGENTA, (128, 64, 3))
                     .astype(np.float32), camera_effects=False)
        return _torso_colour(out.image, out.keypoints)

    white, navy = np.array([230.0, 230.0, 225.0]), np.array([30.0, 40.0, 90.0])
    assert np.abs(chest(jacket, "front") - white).max() < 60
    assert np.abs(chest(jacket, "back") - navy).max() < 60
    assert np.abs(chest(base, "back") - white).max() < 60
