"""Look-alikes told apart by their jacket's layout only (``lookalike_cue=jacket_pattern``): the same
colours to the shade, a layout each, so colour histograms cannot separate them and the back can."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from runtime.errors import ConfigError
from synthmarket import SynthMarketConfig
from synthmarket.appearance import JACKET_PATTERNS
from synthmarket.camera import make_cameras
from synthmarket.dataset import make_plan
from synthmarket.render import Shot, _layout, render
from synthmarket.skeleton import VIEW_YAW, Pose

MAGENTA = np.array([255.0, 0.0, 255.0])
POSE = Pose(kind="stand", hip_flex=(0.0, 0.0), hip_abd=(0.05, 0.05), knee=(0.0, 0.0),
            shoulder_flex=(0.0, 0.0), shoulder_abd=(0.06, 0.06), elbow=(0.1, 0.1))


def _plan(**kw):
    return make_plan(SynthMarketConfig(n_train_ids=16, n_test_ids=8, n_distractors=8, n_junk=0, **kw))


def _patterned(**kw):
    return _plan(jacket_prob=1.0, lookalike_cue="jacket_pattern", lookalike_group_size=4, **kw)


def _groups(plan) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for identity in plan.train_ids + plan.test_ids:
        out.setdefault(plan.groups[identity], []).append(identity)
    return out


def test_off_by_default() -> None:
    plan = _plan(jacket_prob=1.0)
    assert SynthMarketConfig().lookalike_cue == "outfit"
    assert all(a.jacket_pattern == "solid" and a.jacket2 is None for a in plan.appearances.values())


def test_lookalikes_differ_in_layout_and_body_only() -> None:
    plan = _patterned()
    groups = _groups(plan)
    assert len(groups) == 6  # 16 train and 8 test identities in groups of 4
    for members in groups.values():
        looks = [plan.appearances[m] for m in members]
        assert [a.jacket_pattern for a in looks] == list(JACKET_PATTERNS[: len(looks)])
        assert len({a.body for a in looks}) == len(looks)
        same = {dataclasses.replace(a, jacket_pattern="solid", body=looks[0].body) for a in looks}
        assert len(same) == 1, members  # colours (shade offsets included), jacket, outfit: all equal
        assert looks[0].jacket2 is not None and looks[0].jacket2_name != looks[0].jacket_name
    assert "hstripes(" in plan.appearances[groups[next(iter(groups))][0]].summary()
    assert plan.jobs == _plan(jacket_prob=1.0).jobs  # who is where is planned the same


@pytest.mark.parametrize("pattern", JACKET_PATTERNS)
def test_every_layout_covers_half_of_any_band(pattern: str) -> None:
    """A colour histogram of a band of rows sees the same two-colour mix whatever the layout."""
    period, rows = 12.0, 60  # bands about as high as the proxy's stripes at this supersampling
    mask = _layout(pattern, period, (240, 240))
    for band in np.split(mask, 240 // rows, axis=0):  # at most half a period of one colour in excess
        assert abs(band.mean() - 0.5) <= period / (2 * rows) + 0.01, (pattern, band.mean())


def test_layouts_differ_pairwise() -> None:
    masks = {p: _layout(p, 12.0, (240, 240)) for p in JACKET_PATTERNS}
    for i, a in enumerate(JACKET_PATTERNS):
        for b in JACKET_PATTERNS[i + 1:]:
            assert (masks[a] != masks[b]).mean() > 0.3, (a, b)


def _render(a, view: str) -> np.ndarray:
    shot = Shot(view=view, yaw=VIEW_YAW[view], pose=POSE, stature=0.86, centre_x=0.5, feet_y=0.97, bg_centre=0.5)
    return render(a, make_cameras(0)[0], shot, np.random.default_rng(0),
                  background=np.broadcast_to(MAGENTA, (128, 64, 3)).astype(np.float32), camera_effects=False).image


def test_the_back_shows_the_layout_in_the_second_colour() -> None:
    plan = _patterned()
    members = next(iter(_groups(plan).values()))
    looks = [dataclasses.replace(plan.appearances[m], bag="none", hair_long=False, jacket=(200, 200, 40),
                                 jacket2=(30, 160, 200), body=plan.appearances[members[0]].body) for m in members]
    backs = [_render(a, "back").astype(float) for a in looks]
    second = np.asarray(looks[0].jacket2, dtype=float)
    for image in backs:  # the second colour covers a good part of the back
        assert (np.abs(image - second).max(-1) < 40).sum() > 150
    plain = _render(dataclasses.replace(looks[0], jacket_pattern="solid"), "back").astype(float)
    assert (np.abs(plain - second).max(-1) < 40).sum() < 20
    for i in range(len(backs)):  # same body and colours: only the layout tells the backs apart
        for j in range(i + 1, len(backs)):
            assert np.abs(backs[i] - backs[j]).max(-1).__gt__(60).sum() > 100, (i, j)


def test_config_refuses_what_it_cannot_draw() -> None:
    with pytest.raises(ConfigError, match=r"jacket_prob=1\.0"):
        SynthMarketConfig(lookalike_cue="jacket_pattern", jacket_prob=0.5, lookalike_group_size=4)
    with pytest.raises(ConfigError, match="lookalike_group_size <= 4"):
        SynthMarketConfig(lookalike_cue="jacket_pattern", jacket_prob=1.0, lookalike_group_size=5)
