"""Draw one person in one camera: the image, the exact keypoints, and which of them a detector sees.

Body parts are flat-shaded PIL shapes painted far-to-near into a supersampled map of part ids; the
map is then coloured (garments, patterns, shading) and box-filtered down, so each output pixel knows
how much of it is person. A joint counts as visible only when the part painted on top of it is one
it belongs to (a far arm behind the torso is missing, as for a real detector), its pixel is mostly
person, and it lies inside the box.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from poseformats.keypoints import (
    ARMS,
    L_ANKLE,
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    LEGS,
    MISSING,
    N_JOINTS,
    NECK,
    NOSE,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
)  # fmt: skip
from synthmarket.appearance import RGB, Appearance
from synthmarket.camera import Camera, apply_camera, background_crop
from synthmarket.skeleton import Pose, Posed, Projection, face_visible, pose_body

# Part groups: what a pixel of the part-id map belongs to.
(HEAD, NECK_G, TORSO, R_UPPER, R_FORE, L_UPPER, L_FORE, R_THIGH, R_SHIN, R_SHOE, L_THIGH, L_SHIN, L_SHOE,
 SKIRT, BAG, STRAP, OCCLUDER) = range(1, 18)  # fmt: skip
PERSON_GROUPS = frozenset(range(HEAD, STRAP + 1))
_ARMS = {R_UPPER, R_FORE, L_UPPER, L_FORE}
# The part groups on which each joint may be found. Shoulders and hips are seen through a thin arm,
# strap, neck or lock of hair (detectors infer them); elbows, wrists, knees and ankles are not.
ALLOWED: dict[int, frozenset[int]] = {
    NOSE: frozenset({HEAD}), R_EYE: frozenset({HEAD}), L_EYE: frozenset({HEAD}),
    R_EAR: frozenset({HEAD}), L_EAR: frozenset({HEAD}),
    NECK: frozenset({HEAD, NECK_G, TORSO, STRAP}),
    R_SHOULDER: frozenset({TORSO, STRAP, NECK_G, HEAD} | _ARMS),
    L_SHOULDER: frozenset({TORSO, STRAP, NECK_G, HEAD} | _ARMS),
    R_ELBOW: frozenset({R_UPPER, R_FORE}), R_WRIST: frozenset({R_FORE}),
    L_ELBOW: frozenset({L_UPPER, L_FORE}), L_WRIST: frozenset({L_FORE}),
    R_HIP: frozenset({TORSO, R_THIGH, L_THIGH, SKIRT} | _ARMS), R_KNEE: frozenset({R_THIGH, R_SHIN, SKIRT}),
    R_ANKLE: frozenset({R_SHIN, R_SHOE}),
    L_HIP: frozenset({TORSO, L_THIGH, R_THIGH, SKIRT} | _ARMS), L_KNEE: frozenset({L_THIGH, L_SHIN, SKIRT}),
    L_ANKLE: frozenset({L_SHIN, L_SHOE}),
}  # fmt: skip
MIN_COVERAGE = 0.6  # share of a joint's output pixel that must be person for the joint to count
OCCLUDERS: tuple[str, ...] = ("pole", "low", "person")
MISALIGNMENTS: tuple[str, ...] = ("shift", "cut_top", "cut_bottom", "small")
FAR_SHADE = 0.8  # limbs on the far side of the body are in its shadow
TIGHTS = (40, 34, 34)  # legs under a dark skirt


@dataclass(frozen=True)
class Shot:
    """What one image shows, apart from pixel noise: view, pose, framing, occluder, light."""

    view: str
    yaw: float  # radians, the view's yaw plus a jitter
    pose: Pose
    stature: float  # body height as a fraction of the box height
    centre_x: float  # column of the body's axis, fraction of the width
    feet_y: float  # row of the soles, fraction of the height (> 1: feet cut off)
    bg_centre: float  # where in the camera's scene the box is, 0..1
    light: float = 1.0
    occluder: str = "none"
    misaligned: str = "none"


@dataclass
class Rendered:
    """An image before JPEG, its keypoints (18, 2) (y, x) with MISSING where not seen, the person
    mask (person coverage >= MIN_COVERAGE) and the exact projected joints (float, all 18)."""

    image: np.ndarray
    keypoints: np.ndarray
    person_mask: np.ndarray
    joints: np.ndarray
    info: dict = field(default_factory=dict)


# Which garment's pattern covers a part: none, the top's (Appearance.pattern) or the jacket's
# (Appearance.jacket_pattern).
PLAIN, TOP, JACKET = 0, 1, 2


class _Canvas:
    """The supersampled part-id map and the table saying what each id is."""

    def __init__(self, height: int, width: int) -> None:
        self.image = Image.new("L", (width, height), 0)
        self.draw = ImageDraw.Draw(self.image)
        self.groups: list[int] = [0]
        self.colours: list[RGB] = [(0, 0, 0)]
        self.shades: list[float] = [1.0]
        self.patterned: list[int] = [PLAIN]

    def part(self, group: int, colour: RGB, shade: float = 1.0, patterned: int = PLAIN) -> int:
        """A new part id; ``patterned`` says whose two-colour layout covers it (PLAIN, TOP or JACKET)."""
        if len(self.groups) >= 255:
            raise RuntimeError("too many parts for an 8-bit part map")
        self.groups.append(group)
        self.colours.append(colour)
        self.shades.append(shade)
        self.patterned.append(int(patterned))
        return len(self.groups) - 1

    def capsule(self, pid: int, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float) -> None:
        """A tapered limb from p0 to p1 (image (row, col)), radii in pixels, round ends."""
        (y0, x0), (y1, x1) = p0, p1
        d = math.hypot(y1 - y0, x1 - x0)
        if d > 1e-6:
            ny, nx = (x1 - x0) / d, -(y1 - y0) / d
            poly = [(x0 + nx * r0, y0 + ny * r0), (x1 + nx * r1, y1 + ny * r1),
                    (x1 - nx * r1, y1 - ny * r1), (x0 - nx * r0, y0 - ny * r0)]
            self.draw.polygon(poly, fill=pid)
        self.draw.ellipse([x0 - r0, y0 - r0, x0 + r0, y0 + r0], fill=pid)
        self.draw.ellipse([x1 - r1, y1 - r1, x1 + r1, y1 + r1], fill=pid)

    def hull(self, pid: int, points: np.ndarray) -> None:
        """The convex hull of image points (row, col)."""
        hull = convex_hull(np.asarray(points)[:, ::-1])
        if len(hull) >= 3:
            self.draw.polygon([tuple(p) for p in hull], fill=pid)

    def ellipse(self, pid: int, centre: np.ndarray, ry: float, rx: float) -> None:
        y, x = centre
        self.draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=pid)


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Monotone-chain convex hull of 2-D points, counter-clockwise, no repeated end point."""
    pts = sorted(set(map(tuple, np.round(np.asarray(points, dtype=float), 3))))
    if len(pts) <= 2:
        return np.asarray(pts)

    def cross(o, a, b) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.asarray(lower[:-1] + upper[:-1])


def _darker(colour: RGB, factor: float) -> RGB:
    return tuple(int(c * factor) for c in colour)  # type: ignore[return-value]


def _box(centre: np.ndarray, half: tuple[float, float, float], axes: np.ndarray) -> np.ndarray:
    """The 8 corners of a box with the given half sizes, oriented by ``axes`` (columns)."""
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
    return centre + (signs * np.asarray(half)) @ axes.T


def _draw_person(canvas: _Canvas, a: Appearance, posed: Posed, proj: Projection) -> dict:
    """Paint every body part far-to-near; returns facts about the drawing for the manifest."""
    body, j = a.body, posed.joints
    s = proj.scale
    g = body.girth
    img = proj.image
    depth = proj.depth_of
    axes = posed.torso_axes
    chest = 0.058 * g
    torso_depth = float(depth(posed.pelvis + axes[:, 1] * 0.15))
    ops: list[tuple[float, float, Callable[[], None]]] = []  # (layer, depth within the layer, painter)

    def later(layer: float, key: float, fn: Callable[[], None]) -> None:
        ops.append((layer, key, fn))

    def shade_of(point: np.ndarray) -> float:
        return FAR_SHADE if depth(point) < torso_depth - 0.04 else 1.0

    # --- legs, shoes (layer 2, far first)
    lower, skin = a.lower, a.skin
    leg_parts = ((R_THIGH, R_SHIN, R_SHOE), (L_THIGH, L_SHIN, L_SHOE))
    tights = a.lower_type == "skirt" and (a.lower_name in ("black", "navy", "darkgrey"))
    for i, ((hip, knee, ankle), (g_thigh, g_shin, g_shoe)) in enumerate(zip(LEGS, leg_parts, strict=True)):
        d_leg = float(depth((j[hip] + j[knee]) / 2))

        def paint_leg(hip=hip, knee=knee, ankle=ankle, g_thigh=g_thigh, g_shin=g_shin, g_shoe=g_shoe, i=i):
            sh = shade_of(j[knee])
            pad = 0.007 * s if a.lower_type == "trousers" else 0.0
            thigh_r0, thigh_r1 = 0.056 * g * s + pad, 0.04 * g * s + pad
            shin_r0, shin_r1 = 0.037 * g * s + pad, 0.026 * g * s + pad
            leg_c = lower if a.lower_type == "trousers" else TIGHTS if tights else skin
            canvas.capsule(canvas.part(g_thigh, leg_c, sh), img(j[hip]), img(j[knee]), thigh_r0, thigh_r1)
            canvas.capsule(canvas.part(g_shin, leg_c, sh), img(j[knee]), img(j[ankle]), shin_r0, shin_r1)
            if a.lower_type == "shorts":
                hem = j[hip] + 0.62 * (j[knee] - j[hip])
                canvas.capsule(canvas.part(g_thigh, lower, sh), img(j[hip]), img(hem), thigh_r0 + 0.008 * s,
                               thigh_r0 * 0.85 + 0.008 * s)
            toe, heel = posed.toes[i], posed.heels[i]
            canvas.capsule(canvas.part(g_shoe, a.shoes, sh), img(heel), img(toe), 0.024 * s, 0.02 * s)
            canvas.capsule(canvas.part(g_shoe, a.shoes, sh), img(j[ankle]), img(heel), 0.024 * s, 0.024 * s)

        later(2, d_leg, paint_leg)

    # --- pelvis in the lower garment (layer 3), skirt (layer 3.5)
    pel = np.array([[sx * (body.hip / 2 + 0.045 * g), dy, sz * chest * 0.95]
                    for sx in (-1, 1) for dy in (0.045, -0.055) for sz in (-1, 1)])
    pel = posed.pelvis + pel
    later(3, 0.0, lambda: canvas.hull(canvas.part(TORSO, lower), img(pel)))
    if a.lower_type == "skirt":
        drop = a.skirt_length * (body.thigh + body.shin)
        pts = []
        for ang in np.linspace(0, 2 * math.pi, 12, endpoint=False):
            pts.append([math.cos(ang) * (body.hip / 2 + 0.05 * g), 0.06, math.sin(ang) * (chest + 0.01)])
            flare = body.hip / 2 + 0.07 * g + 0.12 * drop
            pts.append([math.cos(ang) * flare, -drop, math.sin(ang) * (chest + 0.04 + 0.1 * drop)])
        skirt_pts = posed.pelvis + np.asarray(pts)
        later(3.5, 0.0, lambda: canvas.hull(canvas.part(SKIRT, lower), img(skirt_pts)))

    # --- upper torso (layer 4), print on the chest
    top = j[NECK]
    half_sho = body.shoulder / 2 + 0.028 * g
    local = []
    for sz in (-1, 1):
        local += [[sx * half_sho, -0.03, sz * chest] for sx in (-1, 1)]
        local += [[sx * 0.05, 0.012, sz * chest * 0.8] for sx in (-1, 1)]
        local += [[sx * (0.085 + 0.02 * g), -0.2, sz * chest] for sx in (-1, 1)]
    hem_y = float(posed.pelvis[1]) - 0.035
    hem = [[sx * (body.hip / 2 + 0.05 * g), 0.0, sz * chest] for sx in (-1, 1) for sz in (-1, 1)]
    torso_pts = np.vstack([top + np.asarray(local) @ axes.T,
                           np.asarray(hem) + [0.0, hem_y, 0.0] + [posed.pelvis[0], 0.0, posed.pelvis[2]]])
    patterned = TOP if a.pattern in ("stripes", "checks") else PLAIN
    jacket_patterned = JACKET if a.jacket_pattern != "solid" else PLAIN
    if a.jacket is None:
        later(4, 0.0, lambda: canvas.hull(canvas.part(TORSO, a.upper, patterned=patterned), img(torso_pts)))
    else:  # an open jacket: the torso in the jacket's colour, the top only in the opening at the front
        later(4, 0.0, lambda: canvas.hull(canvas.part(TORSO, a.jacket, patterned=jacket_patterned), img(torso_pts)))
        if proj.facing(axes[:, 2]) > 0.0:
            opening = np.vstack([top + np.asarray([[sx * 0.65 * half_sho, -0.02, chest * 1.02] for sx in (-1, 1)]) @ axes.T,
                                 np.asarray([[sx * 0.65 * (body.hip / 2 + 0.05 * g), hem_y, chest * 1.02]
                                             for sx in (-1, 1)]) + [posed.pelvis[0], 0.0, posed.pelvis[2]]])
            later(4.1, 0.0, lambda: canvas.hull(canvas.part(TORSO, a.upper, patterned=patterned), img(opening)))
    chest_front = top + axes @ [0.0, -0.09, chest]
    if a.pattern == "print" and proj.facing(axes[:, 2]) > 0.35:
        def paint_print():
            c = img(chest_front)
            w = 0.045 * s * max(0.3, float(proj.facing(axes[:, 2])))
            canvas.ellipse(canvas.part(TORSO, a.upper2), c, 0.04 * s, w)
        later(4.2, 0.0, paint_print)

    # --- bags and straps
    if a.bag == "backpack":
        centre = top + axes @ [0.0, -0.13, -(chest + 0.05)]
        pack = _box(centre, (0.085 * g, 0.105, 0.05), axes)
        layer = 6 if depth(centre) > torso_depth else 1
        later(layer, 0.0, lambda: canvas.hull(canvas.part(BAG, a.bag_colour), img(pack)))
        for sx in (-1, 1):
            front = (top + axes @ [sx * 0.065, -0.005, chest], top + axes @ [sx * 0.085, -0.2, chest])
            if depth(front[0]) > torso_depth:
                later(4.5, 0.0, lambda f=front: canvas.capsule(canvas.part(STRAP, _darker(a.bag_colour, 0.85)),
                                                               img(f[0]), img(f[1]), 0.012 * s, 0.012 * s))
    elif a.bag == "shoulder":
        side = -1.0 if a.bag_side == 0 else 1.0
        centre = posed.pelvis + [side * (body.hip / 2 + 0.075 * g), 0.03, 0.0]
        bag_pts = _box(centre, (0.025, 0.06, 0.08), np.eye(3))
        layer = 5 if depth(centre) > torso_depth + 0.02 else 1.5
        later(layer, 0.0, lambda: canvas.hull(canvas.part(BAG, a.bag_colour), img(bag_pts)))
        strap_top = top + axes @ [-side * 0.07, 0.0, 0.0]
        for sz in (-1, 1):
            start = strap_top + axes @ [0.0, 0.0, sz * chest]
            end = centre + [0.0, 0.06, sz * 0.02]
            if depth(start) > torso_depth:
                later(4.5, 0.0, lambda p=start, q=end: canvas.capsule(
                    canvas.part(STRAP, _darker(a.bag_colour, 0.85)), img(p), img(q), 0.009 * s, 0.009 * s))

    # --- arms: behind the torso (layer 1) or in front (layer 7), each segment on its own
    arm_parts = ((R_UPPER, R_FORE), (L_UPPER, L_FORE))
    sleeve_c = a.upper if a.jacket is None else a.jacket  # a jacket's sleeves are long, the jacket's colour
    short = a.sleeves == "short" and a.jacket is None
    sleeve_patterned = patterned if a.jacket is None else jacket_patterned
    for i, ((sho, elb, wri), (g_up, g_fore)) in enumerate(zip(ARMS, arm_parts, strict=True)):
        hand = posed.hands[i]
        d_up = float(depth((j[sho] + j[elb]) / 2))
        d_fore = float(depth((j[elb] + j[wri]) / 2))

        def paint_upper(sho=sho, elb=elb, g_up=g_up):
            sh = shade_of(j[elb])
            r0, r1 = 0.034 * g * s, 0.027 * g * s
            if short:
                canvas.capsule(canvas.part(g_up, a.skin, sh), img(j[sho]), img(j[elb]), r0 * 0.85, r1 * 0.85)
                mid = j[sho] + 0.5 * (j[elb] - j[sho])
                canvas.capsule(canvas.part(g_up, sleeve_c, sh, sleeve_patterned), img(j[sho]), img(mid), r0 + 0.004 * s, r0)
            else:
                canvas.capsule(canvas.part(g_up, sleeve_c, sh, sleeve_patterned), img(j[sho]), img(j[elb]), r0, r1)

        def paint_fore(elb=elb, wri=wri, g_fore=g_fore, hand=hand):
            sh = shade_of(j[wri])
            colour = a.skin if short else sleeve_c
            canvas.capsule(canvas.part(g_fore, colour, sh, PLAIN if short else sleeve_patterned), img(j[elb]), img(j[wri]),
                           0.026 * g * s, 0.021 * g * s)
            canvas.capsule(canvas.part(g_fore, a.skin, sh), img(j[wri]), img(hand), 0.019 * s, 0.017 * s)

        up_layer = 7 if d_up > torso_depth - 0.04 else 1
        fore_layer = 7 if d_fore > torso_depth - 0.04 else 1
        later(up_layer, d_up, paint_upper)
        later(fore_layer, d_fore + (0.001 if fore_layer == up_layer else 0.0), paint_fore)
        if a.bag == "handbag" and a.bag_side == i:
            centre = hand + [0.0, -0.065, 0.0]
            hb = _box(centre, (0.05, 0.045, 0.022), np.eye(3))
            later(fore_layer, d_fore + 0.002,
                  lambda hb=hb: canvas.hull(canvas.part(BAG, a.bag_colour), img(hb)))

    # --- neck and head (layer 6): hair cap, face; long hair behind (layer 0.5) or over the back
    head_c = posed.head_centre
    hw, hh = body.head_width, body.head
    neck_top = head_c + axes @ [0.0, -0.25 * hh, -0.01]
    later(5.5, 0.0, lambda: canvas.capsule(canvas.part(NECK_G, a.skin), img(top), img(neck_top), 0.03 * g * s, 0.028 * s))
    facing = float(proj.facing(posed.head_axes[:, 2]))
    if a.hair_long:
        ha = posed.head_axes
        hair_pts = np.asarray([head_c + ha @ [sx * 0.5 * hw, dy, -0.22 * hw] for sx in (-1, 1) for dy in (0.0, 0.2 * hh)]
                              + [top + axes @ [sx * 0.07, -0.06, -0.03] for sx in (-1, 1)])
        hair_layer = 6.5 if facing < -0.2 else 0.5
        later(hair_layer, 0.0, lambda: canvas.hull(canvas.part(HEAD, a.hair), img(hair_pts)))

    def paint_head():
        c = img(head_c)
        rx, ry = 0.54 * hw * s, 0.5 * hh * s
        canvas.ellipse(canvas.part(HEAD, a.hair), c, ry, rx)
        if facing > -0.4:
            fwd = posed.head_axes[:, 2]
            shift = float(proj.world(fwd)[0])
            fc = c + np.array([0.14 * ry, 0.42 * shift * rx])
            frx = rx * (0.56 + 0.26 * max(0.0, facing))
            fry = ry * (0.74 if a.hair_long else 0.78)
            canvas.ellipse(canvas.part(HEAD, a.skin), fc, fry, frx)

    later(6, 0.0, paint_head)

    for _, _, paint in sorted(ops, key=lambda op: (op[0], op[1])):
        paint()
    return {"facing": facing}


def _draw_occluder(canvas: _Canvas, kind: str, rng: np.random.Generator, h: int, w: int) -> None:
    """Something between the camera and the person: a pole, a low object (car, bench, bush), or
    another passer-by at the box edge."""
    colour = tuple(int(v) for v in rng.integers(30, 220, 3))
    if kind == "pole":
        x = rng.uniform(0.15, 0.85) * w
        half = rng.uniform(0.05, 0.1) * w
        canvas.draw.rectangle([x - half, 0, x + half, h], fill=canvas.part(OCCLUDER, _darker(colour, 0.6)))
    elif kind == "low":
        top = rng.uniform(0.62, 0.8) * h
        pid = canvas.part(OCCLUDER, colour)
        canvas.draw.rounded_rectangle([-0.2 * w, top, 1.2 * w, h * 1.1], radius=0.15 * w, fill=pid)
        canvas.draw.rectangle([-0.2 * w, top + 0.05 * h, 1.2 * w, top + 0.08 * h],
                              fill=canvas.part(OCCLUDER, _darker(colour, 0.7)))
    elif kind == "person":
        side = rng.choice([-1.0, 1.0])
        cx = w * (0.5 + side * rng.uniform(0.62, 0.8))
        half = rng.uniform(0.3, 0.4) * w
        top = rng.uniform(0.12, 0.3) * h
        canvas.draw.rounded_rectangle([cx - half, top + 0.12 * h, cx + half, h * 1.1], radius=0.2 * w,
                                      fill=canvas.part(OCCLUDER, colour))
        hair = tuple(int(v) for v in rng.integers(10, 90, 3))
        canvas.draw.ellipse([cx - 0.18 * w, top, cx + 0.18 * w, top + 0.14 * h], fill=canvas.part(OCCLUDER, hair))
    else:
        raise ValueError(f"unknown occluder {kind!r}; one of {OCCLUDERS}")


def _value_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a coarse random grid, bilinearly enlarged."""
    gh, gw = shape[0] // cell + 2, shape[1] // cell + 2
    grid = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8))
    big = np.asarray(grid.resize((gw * cell, gh * cell), Image.BILINEAR), dtype=np.float32)
    return big[: shape[0], : shape[1]] / 255.0


def _colourise(canvas: _Canvas, a: Appearance, proj: Projection, ss: int) -> np.ndarray:
    """The supersampled part map in flat garment colours (float32, H*ss x W*ss x 3); background
    pixels are black, so box-filtering it gives colour premultiplied by coverage."""
    ids = np.asarray(canvas.image)
    shades = np.asarray(canvas.shades, dtype=np.float32)
    rgb = (np.asarray(canvas.colours, dtype=np.float32) * shades[:, None])[ids]
    patterned = np.asarray(canvas.patterned)[ids]
    layers = ((TOP, a.pattern, a.pattern_scale, a.upper2), (JACKET, a.jacket_pattern, a.jacket_pattern_scale, a.jacket2))
    for key, pattern, scale, second in layers:
        covered = patterned == key
        if not covered.any():
            continue
        sel = covered & _layout(pattern, max(2.0, scale * proj.scale), ids.shape)
        rgb[sel] = np.asarray(second, dtype=np.float32) * shades[ids[sel]][:, None]
    return rgb


def _layout(pattern: str, period: float, shape: tuple[int, int]) -> np.ndarray:
    """Where a two-colour pattern shows its second colour: bands ``period`` (supersampled pixels) wide,
    alternating, so either colour covers about half of any large area."""
    h, w = shape
    rows = np.broadcast_to((np.arange(h)[:, None] / period).astype(int) % 2 == 0, (h, w))
    cols = np.broadcast_to((np.arange(w)[None, :] / period).astype(int) % 2 == 0, (h, w))
    if pattern in ("stripes", "hstripes"):
        return rows
    if pattern == "vstripes":
        return cols
    if pattern == "checks":
        return rows ^ cols
    if pattern == "diagonal":  # bands at 45 degrees, ``period`` wide across
        return ((np.arange(h)[:, None] + np.arange(w)[None, :]) / (period * math.sqrt(2.0))).astype(int) % 2 == 0
    raise ValueError(f"unknown pattern {pattern!r}")


def _shading(alpha: np.ndarray, centre_col: float, scale: float, light_side: float,
             rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplier at output size: darker towards the silhouette (a rounded body), lit from
    the camera's light side, with creases. Smooth, so applying it after box-filtering is exact enough."""
    h, w = alpha.shape
    soft = np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.6)),
                      dtype=np.float32) / 255.0
    side = np.clip((np.arange(w, dtype=np.float32) - centre_col) / (0.2 * scale), -1.5, 1.5)
    light = 1.0 + 0.1 * light_side * side[None, :]
    folds = 0.9 + 0.2 * _value_noise(rng, (h, w), 5)
    return (0.68 + 0.32 * soft) * light * folds


def _reduce(x: np.ndarray, ss: int) -> np.ndarray:
    """Box-filter an (H*ss, W*ss, ...) array down by ``ss`` (strided sums: far faster than a mean
    over reshaped axes)."""
    out = np.zeros((x.shape[0] // ss, x.shape[1] // ss, *x.shape[2:]), dtype=np.float32)
    for i in range(ss):
        for j in range(ss):
            out += x[i::ss, j::ss]
    return out / (ss * ss)


def _shadow(h: int, w: int, centre: tuple[float, float], rx: float, ry: float) -> np.ndarray:
    """A soft ground shadow multiplier (1 = none)."""
    mask = Image.new("L", (w, h), 0)
    y, x = centre
    ImageDraw.Draw(mask).ellipse([x - rx, y - ry, x + rx, y + ry], fill=255)
    soft = np.asarray(mask.filter(ImageFilter.GaussianBlur(max(1.0, ry))), dtype=np.float32) / 255.0
    return 1.0 - 0.35 * soft


def render(appearance: Appearance, camera: Camera, shot: Shot, rng: np.random.Generator, *,
           height: int = 128, width: int = 64, supersample: int = 3,
           background: np.ndarray | None = None, camera_effects: bool = True) -> Rendered:
    """One image. ``background`` (float (H, W, 3)) replaces the camera's scene and
    ``camera_effects=False`` skips light, blur and noise: both for tests that need known pixels."""
    ss = supersample
    hs, ws = height * ss, width * ss
    posed = pose_body(appearance.body, shot.pose)
    scale = shot.stature * height * ss
    proj0 = Projection(yaw=shot.yaw, pitch=camera.pitch, scale=scale)
    centre_col = float(proj0.image(posed.pelvis)[1])
    proj = Projection(yaw=shot.yaw, pitch=camera.pitch, scale=scale,
                      offset=(shot.feet_y * hs, shot.centre_x * ws - centre_col))
    canvas = _Canvas(hs, ws)
    facts = _draw_person(canvas, appearance, posed, proj)
    if shot.occluder != "none":
        _draw_occluder(canvas, shot.occluder, rng, hs, ws)

    ids = np.asarray(canvas.image)
    alpha = _reduce((ids > 0).astype(np.float32), ss)
    fg = _reduce(_colourise(canvas, appearance, proj, ss), ss)
    fg *= _shading(alpha, shot.centre_x * width, scale / ss, camera.light_side, rng)[..., None]
    alpha = alpha[..., None]
    groups = np.asarray(canvas.groups, dtype=np.uint8)[ids]
    person_ss = (groups >= HEAD) & (groups <= STRAP)
    person_cover = _reduce(person_ss.astype(np.float32), ss)

    if background is None:
        background = background_crop(camera, rng, height, width, centre=shot.bg_centre)
    feet = proj.image(np.array([0.0, 0.0, 0.0])) / ss
    shadow = _shadow(height, width, (feet[0], feet[1]), 0.16 * scale / ss, 0.025 * scale / ss)
    composite = background * shadow[..., None] * (1.0 - alpha) + fg * shot.light
    if camera_effects:
        image = apply_camera(composite, camera, rng, light=1.0)
    else:
        image = np.clip(composite + 0.5, 0, 255).astype(np.uint8)

    joints_ss = proj.image(posed.joints)  # (18, 2) row, col in supersampled pixels
    faces = face_visible(posed, proj)
    keypoints = np.full((N_JOINTS, 2), MISSING, dtype=np.int32)
    for jt in range(N_JOINTS):
        r, c = joints_ss[jt]
        if not (0 <= r < hs and 0 <= c < ws):
            continue
        if not faces.get(jt, True):
            continue
        if groups[int(r), int(c)] not in ALLOWED[jt]:
            continue
        y, x = int(r // ss), int(c // ss)
        if person_cover[y, x] < MIN_COVERAGE:
            continue
        keypoints[jt] = (y, x)
    info = {"facing": facts["facing"], "n_visible": int((keypoints[:, 0] != MISSING).sum())}
    return Rendered(image=image, keypoints=keypoints, person_mask=person_cover >= MIN_COVERAGE,
                    joints=joints_ss / ss, info=info)
