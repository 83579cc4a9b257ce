"""An articulated 18-joint body: proportions, walking and standing poses, views, and projection.

The body lives in its own 3-D frame, in units of stature (sole to crown = 1): x points to the
person's LEFT, y up, z FORWARD (the way the person faces). A view is a yaw about the vertical axis;
the camera looks down by a small pitch. Projecting keeps the depth of every point so the renderer
can draw far parts first and a real detector's self-occlusion can be imitated. Joints are labelled
anatomically, as OpenPose does, so in a back view the left joints land on the image's left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from poseformats.keypoints import ARMS, L_EAR, L_EYE, LEGS, N_JOINTS, NECK, NOSE, R_EAR, R_EYE

# The body frame's x of the right and the left side (the order of ARMS and LEGS, and of a Pose's pairs).
SIDE_X: tuple[float, float] = (-1.0, 1.0)
VIEWS: tuple[str, ...] = ("front", "back", "left", "right")
# Yaw of the person's forward axis away from the camera axis. "left" = the person's left side faces
# the camera (walking towards the image's left).
VIEW_YAW: dict[str, float] = {"front": 0.0, "back": math.pi, "left": -math.pi / 2, "right": math.pi / 2}
POSE_KINDS: tuple[str, ...] = ("walk", "stand")

# Outward normals of the face joints in the head frame: a face joint is seen only when its normal
# points at the camera by more than the threshold (a detector finds no eye on the back of a head).
FACE_NORMALS: dict[int, tuple[tuple[float, float, float], float]] = {
    NOSE: ((0.0, 0.0, 1.0), -0.05),
    R_EYE: ((-0.45, 0.0, 0.89), 0.12),
    L_EYE: ((0.45, 0.0, 0.89), 0.12),
    R_EAR: ((-0.96, 0.0, -0.28), -0.45),
    L_EAR: ((0.96, 0.0, -0.28), -0.45),
}


@dataclass(frozen=True)
class Body:
    """Proportions of one person, as fractions of stature; girth scales every thickness."""

    head: float = 0.13
    shoulder: float = 0.225
    hip: float = 0.115
    upper_arm: float = 0.175
    forearm: float = 0.15
    thigh: float = 0.245
    shin: float = 0.24
    girth: float = 1.0

    ankle: float = 0.045
    neck: float = 0.045

    @property
    def hip_height(self) -> float:
        return self.ankle + self.shin + self.thigh

    @property
    def shoulder_height(self) -> float:
        return 1.0 - self.head - self.neck

    @property
    def head_width(self) -> float:
        return 0.78 * self.head


def sample_body(rng: np.random.Generator) -> Body:
    """Plausible adult proportions: long- and short-legged, broad and narrow, slim and heavy."""
    legs = rng.uniform(0.95, 1.05)
    return Body(
        head=rng.uniform(0.122, 0.14),
        shoulder=rng.uniform(0.2, 0.25),
        hip=rng.uniform(0.1, 0.13),
        upper_arm=rng.uniform(0.165, 0.185),
        forearm=rng.uniform(0.14, 0.16),
        thigh=0.245 * legs,
        shin=0.24 * legs,
        girth=rng.uniform(0.85, 1.25),
    )


@dataclass(frozen=True)
class Pose:
    """Joint angles in radians; pairs are (right, left). Flexion is forward, abduction outward."""

    kind: str
    hip_flex: tuple[float, float]
    hip_abd: tuple[float, float]
    knee: tuple[float, float]
    shoulder_flex: tuple[float, float]
    shoulder_abd: tuple[float, float]
    elbow: tuple[float, float]
    # Which way a bending elbow takes the forearm: 0 straight forward, pi/2 towards the body's midline.
    arm_twist: tuple[float, float] = (0.35, 0.35)
    lean: float = 0.0
    head_yaw: float = 0.0
    head_pitch: float = 0.0


def walking_pose(rng: np.random.Generator, phase: float, stride: float | None = None) -> Pose:
    """A gait cycle at ``phase``: legs swing in antiphase, each arm opposite its own leg, and the
    swinging leg's knee bends most as it passes under the body."""
    a = rng.uniform(0.28, 0.48) if stride is None else stride
    arm = a * rng.uniform(0.6, 1.1)
    hips, knees, shoulders, elbows = [], [], [], []
    for offset in (0.0, math.pi):  # right, left
        p = phase + offset
        hips.append(a * math.sin(p))
        swing = max(0.0, math.cos(p))
        knees.append(0.06 + min(0.95, 0.8 * a / 0.38) * swing ** 1.6 + rng.uniform(0.0, 0.06))
        shoulders.append(-arm * math.sin(p))
        elbows.append(0.12 + 0.35 * max(0.0, -arm * math.sin(p)) + rng.uniform(0.0, 0.15))
    return Pose(
        kind="walk",
        hip_flex=(hips[0], hips[1]),
        hip_abd=(rng.uniform(0.0, 0.05), rng.uniform(0.0, 0.05)),
        knee=(knees[0], knees[1]),
        shoulder_flex=(shoulders[0], shoulders[1]),
        shoulder_abd=(rng.uniform(0.05, 0.16), rng.uniform(0.05, 0.16)),
        elbow=(elbows[0], elbows[1]),
        lean=rng.uniform(0.0, 0.1),
        head_yaw=rng.normal(0.0, 0.15),
        head_pitch=rng.uniform(-0.05, 0.2),
    )


def standing_pose(rng: np.random.Generator) -> Pose:
    """Standing still: feet apart, weight on one leg now and then, arms hanging, on the hips or
    bent in front (a phone, a cup) - the variety a detector sees outside a shop."""
    hip_flex = list(rng.normal(0.0, 0.08, 2))
    knee = list(rng.uniform(0.0, 0.1, 2))
    hip_abd = list(rng.uniform(0.02, 0.14, 2))
    if rng.random() < 0.35:  # weight on one leg, the other relaxed
        side = int(rng.integers(2))
        knee[side] = rng.uniform(0.2, 0.45)
        hip_flex[side] = rng.uniform(0.05, 0.3)
    shoulder_flex = list(rng.normal(0.0, 0.1, 2))
    shoulder_abd = list(rng.uniform(0.04, 0.2, 2))
    elbow = list(rng.uniform(0.05, 0.35, 2))
    style = rng.random()
    twist = list(rng.uniform(0.2, 0.5, 2))
    if style < 0.16:  # one forearm raised in front
        side = int(rng.integers(2))
        shoulder_flex[side] = rng.uniform(-0.1, 0.3)
        elbow[side] = rng.uniform(1.1, 1.6)
    elif style < 0.28:  # hand on the hip
        side = int(rng.integers(2))
        shoulder_abd[side] = rng.uniform(0.5, 0.75)
        shoulder_flex[side] = rng.uniform(-0.25, 0.0)
        elbow[side] = rng.uniform(1.5, 1.9)
        twist[side] = rng.uniform(1.4, 1.7)
    elif style < 0.38:  # both arms folded in front
        shoulder_flex = list(rng.uniform(0.05, 0.25, 2))
        elbow = list(rng.uniform(1.6, 2.0, 2))
        twist = list(rng.uniform(0.9, 1.2, 2))
    return Pose(
        kind="stand",
        hip_flex=(hip_flex[0], hip_flex[1]),
        hip_abd=(hip_abd[0], hip_abd[1]),
        knee=(knee[0], knee[1]),
        shoulder_flex=(shoulder_flex[0], shoulder_flex[1]),
        shoulder_abd=(shoulder_abd[0], shoulder_abd[1]),
        elbow=(elbow[0], elbow[1]),
        arm_twist=(twist[0], twist[1]),
        lean=rng.uniform(-0.03, 0.06),
        head_yaw=rng.normal(0.0, 0.3),
        head_pitch=rng.uniform(-0.1, 0.25),
    )


def sample_pose(rng: np.random.Generator, kind: str, phase: float | None = None) -> Pose:
    """A pose of ``kind`` ("walk" at a gait phase, drawn when not given, or "stand")."""
    if kind == "walk":
        return walking_pose(rng, rng.uniform(0, 2 * math.pi) if phase is None else phase)
    if kind == "stand":
        return standing_pose(rng)
    raise ValueError(f"pose kind must be one of {POSE_KINDS}, got {kind!r}")


def _limb_direction(side: float, flex: float, abd: float) -> np.ndarray:
    """Unit vector of a limb hanging down, rotated forward by ``flex`` and outward by ``abd``."""
    return np.array([side * math.sin(abd), -math.cos(abd) * math.cos(flex), math.cos(abd) * math.sin(flex)])


def _unit_normal(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The part of ``v`` perpendicular to the unit vector ``axis``, normalised."""
    w = v - np.dot(v, axis) * axis
    return w / max(float(np.linalg.norm(w)), 1e-9)


def _rot_x(angle: float) -> np.ndarray:
    """Rotation about the lateral axis; positive tips +y towards +z (a forward lean, a bowed head)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(angle: float) -> np.ndarray:
    """Yaw about the vertical axis: forward (0, 0, 1) goes to (sin a, 0, cos a)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


@dataclass(frozen=True)
class Posed:
    """A posed body in its own frame: the 18 joints plus the extra points the renderer needs."""

    joints: np.ndarray  # (18, 3)
    head_centre: np.ndarray  # (3,)
    head_axes: np.ndarray  # (3, 3): the head frame's x (left), y (up), z (forward) in the body frame
    torso_axes: np.ndarray  # (3, 3): the upper body's frame
    pelvis: np.ndarray  # (3,)
    hands: np.ndarray  # (2, 3) right, left
    toes: np.ndarray  # (2, 3) right, left
    heels: np.ndarray  # (2, 3)


def pose_body(body: Body, pose: Pose) -> Posed:
    """Forward kinematics, the stance foot put on the ground (y = 0)."""
    joints = np.zeros((N_JOINTS, 3))
    pelvis = np.array([0.0, body.hip_height, 0.0])
    toes, heels = np.zeros((2, 3)), np.zeros((2, 3))
    for i, ((hip, knee, ankle), side) in enumerate(zip(LEGS, SIDE_X, strict=True)):
        joints[hip] = pelvis + [side * body.hip / 2, 0.0, 0.0]
        flex, abd = pose.hip_flex[i], pose.hip_abd[i]
        joints[knee] = joints[hip] + body.thigh * _limb_direction(side, flex, abd)
        joints[ankle] = joints[knee] + body.shin * _limb_direction(side, flex - pose.knee[i], abd)
        # The foot stays roughly flat, toes forward, lifted at the heel when the shin leans back.
        tilt = max(0.0, -(flex - pose.knee[i])) * 0.6
        foot = np.array([0.0, -math.sin(tilt), math.cos(tilt)])
        toes[i] = joints[ankle] + 0.115 * foot + [0.0, -0.03, 0.0]
        heels[i] = joints[ankle] - 0.03 * foot + [0.0, -0.035, 0.0]
    ground = min(heels[:, 1].min(), toes[:, 1].min()) - 0.006
    lift = np.array([0.0, ground, 0.0])
    torso_axes = _rot_x(pose.lean)  # columns: the upper body's left, up, forward
    up = torso_axes[:, 1]
    neck = pelvis + (body.shoulder_height - body.hip_height + 0.01) * up
    joints[NECK] = neck
    hands = np.zeros((2, 3))
    for i, ((sho, elb, wri), side) in enumerate(zip(ARMS, SIDE_X, strict=True)):
        joints[sho] = neck + torso_axes @ [side * body.shoulder / 2, -0.012, 0.0]
        flex, abd = pose.shoulder_flex[i], pose.shoulder_abd[i]
        upper = _limb_direction(side, flex, abd)
        joints[elb] = joints[sho] + body.upper_arm * upper
        # The elbow swings the forearm away from the upper arm's line towards a direction between
        # the arm's front and the body's midline, set by the arm's twist.
        ahead = _unit_normal(np.array([0.0, 0.0, 1.0]), upper)
        inward = _unit_normal(np.array([-side, 0.0, 0.0]), upper)
        t, e = pose.arm_twist[i], pose.elbow[i]
        bend = _unit_normal(math.cos(t) * ahead + math.sin(t) * inward, upper)
        fore = math.cos(e) * upper + math.sin(e) * bend
        joints[wri] = joints[elb] + body.forearm * fore
        hands[i] = joints[wri] + 0.055 * fore
    head_axes = torso_axes @ _rot_y(pose.head_yaw) @ _rot_x(pose.head_pitch)
    head_centre = neck + torso_axes @ [0.0, body.neck + 0.45 * body.head, 0.012]
    hw = body.head_width
    face = {
        NOSE: [0.0, -0.08 * body.head, 0.5 * hw],
        R_EYE: [-0.2 * hw, 0.06 * body.head, 0.42 * hw],
        L_EYE: [0.2 * hw, 0.06 * body.head, 0.42 * hw],
        R_EAR: [-0.44 * hw, 0.0, -0.02 * hw],
        L_EAR: [0.44 * hw, 0.0, -0.02 * hw],
    }
    for j, offset in face.items():
        joints[j] = head_centre + head_axes @ offset
    return Posed(
        joints=joints - lift, head_centre=head_centre - lift, head_axes=head_axes, torso_axes=torso_axes,
        pelvis=pelvis - lift, hands=hands - lift, toes=toes - lift, heels=heels - lift,
    )


@dataclass(frozen=True)
class Projection:
    """Orthographic camera: yaw of the person, pitch of the camera (looking down), then a scale
    (pixels per stature) and an offset placing the body in the image."""

    yaw: float
    pitch: float
    scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)  # (row, col) of the body origin (between the feet)

    @property
    def rotation(self) -> np.ndarray:
        return _rot_y(self.yaw)

    def world(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=float) @ self.rotation.T

    def depth_of(self, points: np.ndarray) -> np.ndarray:
        """Larger is nearer the camera."""
        w = self.world(points)
        return w[..., 1] * math.sin(self.pitch) + w[..., 2] * math.cos(self.pitch)

    def facing(self, directions: np.ndarray) -> np.ndarray:
        """Cosine between body-frame directions and the direction towards the camera."""
        return self.depth_of(directions)

    def image(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) image (row, col) of body-frame points."""
        w = self.world(points)
        up = w[..., 1] * math.cos(self.pitch) - w[..., 2] * math.sin(self.pitch)
        rows = self.offset[0] - self.scale * up
        cols = self.offset[1] + self.scale * w[..., 0]
        return np.stack([rows, cols], axis=-1)


def face_visible(posed: Posed, projection: Projection) -> dict[int, bool]:
    """Which face joints turn towards the camera enough for a detector to find them."""
    out = {}
    for j, (normal, threshold) in FACE_NORMALS.items():
        direction = posed.head_axes @ np.asarray(normal)
        out[j] = bool(projection.facing(direction) > threshold)
    return out
