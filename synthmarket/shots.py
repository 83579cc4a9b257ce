"""What each image shows: one camera sees a person along a short track (a few frames of the same
walk: same direction, advancing gait phase, nearby place), plus the occasional turn, occluder or
badly placed detection box. Keeping frames of a track alike is what makes cross-camera matching,
not same-camera matching, the hard part - as in Market-1501.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synthmarket.render import MISALIGNMENTS, OCCLUDERS, Shot
from synthmarket.skeleton import POSE_KINDS, VIEW_YAW, VIEWS, sample_pose

VIEW_WEIGHTS = (0.32, 0.32, 0.18, 0.18)
WALK_SHARE = 0.72


@dataclass(frozen=True)
class Track:
    """The state shared by the frames of one identity in one camera."""

    view: str
    kind: str
    phase: float
    stature: float
    centre_x: float
    feet_y: float
    bg_centre: float
    light: float


def sample_track(rng: np.random.Generator) -> Track:
    return Track(
        view=VIEWS[int(rng.choice(len(VIEWS), p=VIEW_WEIGHTS))],
        kind=POSE_KINDS[0] if rng.random() < WALK_SHARE else POSE_KINDS[1],
        phase=float(rng.uniform(0, 2 * math.pi)),
        stature=float(rng.uniform(0.8, 0.92)),
        centre_x=float(rng.normal(0.5, 0.035)),
        feet_y=float(rng.uniform(0.95, 0.99)),
        bg_centre=float(rng.random()),
        light=float(rng.uniform(0.9, 1.1)),
    )


def sample_shot(track: Track, index: int, rng: np.random.Generator, *, occlusion_prob: float = 0.0,
                misalign_prob: float = 0.0, turn_prob: float = 0.15, yaw_jitter: float = 0.3) -> Shot:
    """Frame ``index`` of ``track``. Rare events are drawn from ``rng``; their probabilities are
    dataset knobs."""
    view = track.view
    if rng.random() < turn_prob:
        view = VIEWS[int(rng.choice(len(VIEWS), p=VIEW_WEIGHTS))]
    yaw = VIEW_YAW[view] + float(np.clip(rng.normal(0.0, yaw_jitter), -0.6, 0.6))
    kind = track.kind
    phase = track.phase + index * float(rng.uniform(0.9, 2.2))
    pose = sample_pose(rng, kind, phase=phase)
    stature = track.stature * float(rng.uniform(0.97, 1.03))
    centre_x = track.centre_x + float(rng.normal(0.0, 0.025))
    feet_y = track.feet_y + float(rng.normal(0.0, 0.01))
    misaligned = "none"
    if rng.random() < misalign_prob:
        misaligned = MISALIGNMENTS[int(rng.integers(len(MISALIGNMENTS)))]
        if misaligned == "shift":
            centre_x = 0.5 + float(rng.choice([-1.0, 1.0]) * rng.uniform(0.22, 0.4))
        elif misaligned == "cut_top":
            stature *= float(rng.uniform(1.1, 1.3))
            feet_y = 1.0
        elif misaligned == "cut_bottom":
            stature *= float(rng.uniform(1.05, 1.25))
            feet_y = float(rng.uniform(1.08, 1.25))
        else:
            stature *= float(rng.uniform(0.6, 0.75))
            feet_y = float(rng.uniform(0.8, 0.95))
    occluder = "none"
    if rng.random() < occlusion_prob:
        occluder = OCCLUDERS[int(rng.integers(len(OCCLUDERS)))]
    return Shot(
        view=view, yaw=yaw, pose=pose, stature=stature, centre_x=centre_x, feet_y=feet_y,
        bg_centre=float(np.clip(track.bg_centre + rng.normal(0.0, 0.02), 0.0, 1.0)),
        light=track.light * float(rng.uniform(0.96, 1.04)), occluder=occluder, misaligned=misaligned,
    )
