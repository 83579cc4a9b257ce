"""Camera = context: each of the six cameras has its own scene, light, colour cast, blur, noise and
JPEG quality, so that matching across cameras means looking past the camera at the person.

A camera's scene is one wide canvas (wall or foliage above, ground below, clutter on the ground);
every detection box of that camera is a crop of it at a random place, so images of one camera share
their background without repeating it. ``strength`` scales how different the cameras are
(0 = six identical, clean cameras).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from poseformats.market_names import N_CAMERAS

WALLS: tuple[str, ...] = ("brick", "glass", "trees", "concrete", "shop", "fence")
GROUNDS: tuple[str, ...] = ("tiles", "asphalt", "grass", "pavers")
SCENE_SATURATION = 0.6
# A personality per camera before the seed reshuffles it: (gain, cast rgb, blur px, noise, jpeg).
_LOOKS: tuple[tuple[float, tuple[float, float, float], float, float, int], ...] = (
    (1.08, (1.04, 1.0, 0.94), 0.3, 2.5, 92),   # bright, warm daylight, sharp
    (0.78, (0.9, 0.98, 1.12), 0.7, 4.0, 80),   # shade, cool blue
    (0.92, (1.1, 1.02, 0.82), 0.5, 5.0, 75),   # warm shop light
    (1.22, (1.0, 1.0, 1.0), 0.9, 3.0, 85),     # over-exposed, washed out
    (0.62, (0.95, 1.0, 1.05), 0.6, 7.0, 60),   # dark, noisy, heavily compressed
    (0.95, (0.94, 1.1, 0.92), 1.1, 4.0, 70),   # green tint, soft focus
)  # fmt: skip


@dataclass(frozen=True)
class Camera:
    """One camera's context; everything but ``scene`` is a plain number so it prints in a manifest."""

    index: int  # 1..6, as in Market names
    wall: str
    ground: str
    gain: float
    cast: tuple[float, float, float]
    contrast: float
    blur: float  # Gaussian sigma in output pixels
    noise: float  # sensor noise std, 8-bit units
    jpeg_quality: int
    pitch: float  # radians the camera looks down
    light_side: float  # -1..1: which side of a person is lit
    horizon: float  # fraction of the scene height where the ground starts
    scene: np.ndarray  # uint8 (Hs, Ws, 3)

    def describe(self) -> str:
        return (f"c{self.index}: {self.wall}/{self.ground}, gain {self.gain:.2f}, cast "
                f"({self.cast[0]:.2f}, {self.cast[1]:.2f}, {self.cast[2]:.2f}), blur {self.blur:.2f}, "
                f"noise {self.noise:.1f}, jpeg {self.jpeg_quality}")


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def make_cameras(seed: int, height: int = 128, width: int = 64, strength: float = 1.0) -> list[Camera]:
    """The six cameras of dataset ``seed`` (independent of the identities and of the image count)."""
    root = np.random.SeedSequence([seed, 0x5CA1])
    cameras = []
    looks = np.random.default_rng(root.spawn(1)[0]).permutation(len(_LOOKS))
    walls = np.random.default_rng(np.random.SeedSequence([seed, 0x3A11])).permutation(len(WALLS))
    for i, child in enumerate(root.spawn(N_CAMERAS + 1)[1:]):
        rng = np.random.default_rng(child)
        gain, cast, blur, noise, quality = _LOOKS[looks[i]]
        s = strength
        gain = _lerp(1.0, gain * rng.uniform(0.94, 1.06), s)
        cast = tuple(_lerp(1.0, c * rng.uniform(0.97, 1.03), s) for c in cast)
        ground = GROUNDS[int(rng.integers(len(GROUNDS)))]
        horizon = float(rng.uniform(0.42, 0.68))
        cameras.append(Camera(
            index=i + 1,
            wall=WALLS[walls[i]],
            ground=ground,
            gain=float(gain),
            cast=(float(cast[0]), float(cast[1]), float(cast[2])),
            contrast=float(_lerp(1.0, rng.uniform(0.8, 1.15), s)),
            blur=float(_lerp(0.25, blur * rng.uniform(0.8, 1.25), s)),
            noise=float(_lerp(1.5, noise * rng.uniform(0.8, 1.25), s)),
            jpeg_quality=round(_lerp(92, quality + int(rng.integers(-4, 5)), s)),
            pitch=float(rng.uniform(0.08, 0.3)),
            light_side=float(rng.uniform(-1, 1)),
            horizon=horizon,
            scene=make_scene(rng, WALLS[walls[i]], ground, horizon, height, width),
        ))  # fmt: skip
    return cameras


# ----------------------------------------------------------------------------- scenes

def _noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Smooth value noise in [0, 1]: random values on a coarse grid, bilinearly enlarged."""
    gh, gw = shape[0] // cell + 2, shape[1] // cell + 2
    grid = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8))
    big = grid.resize((gw * cell, gh * cell), Image.BILINEAR)
    return np.asarray(big, dtype=np.float32)[: shape[0], : shape[1]] / 255.0


def _tone(rgb: tuple[float, float, float], rng: np.random.Generator, spread: float = 18) -> tuple[int, ...]:
    """A variation of a colour: mostly lighter or darker, a little off in hue."""
    light = rng.normal(0, spread)
    return tuple(int(np.clip(c + light + rng.normal(0, spread * 0.3), 0, 255)) for c in rgb)


def _draw_wall(draw: ImageDraw.ImageDraw, rng: np.random.Generator, kind: str, h: int, w: int) -> None:
    """The upper part of a scene, rows 0..h: a wall, a shop front, foliage or a fence."""
    if kind == "brick":
        base = _tone((150, 80, 60), rng, 25)
        draw.rectangle([0, 0, w, h], fill=_tone(tuple(0.75 * c for c in base), rng, 5))
        bh = max(3, h // int(rng.integers(9, 14)))
        bw = bh * 2 + 2
        for r, y in enumerate(range(0, h, bh)):
            shift = (bw // 2) * (r % 2)
            for x in range(-shift, w, bw):
                draw.rectangle([x + 1, y + 1, x + bw - 1, y + bh - 1], fill=_tone(base, rng, 12))
    elif kind == "glass":
        draw.rectangle([0, 0, w, h], fill=_tone((70, 90, 100), rng, 15))
        x = 0
        while x < w:
            pw = int(rng.integers(w // 10, w // 5))
            top = np.array(_tone((120, 150, 165), rng, 25), dtype=float)
            for y in range(h):
                shade = top * (1 - 0.45 * y / max(1, h - 1))
                draw.line([(x, y), (x + pw, y)], fill=tuple(int(v) for v in shade))
            for _ in range(int(rng.integers(1, 4))):  # reflections of passers-by: soft blobs
                cx, cy = x + rng.uniform(0, pw), rng.uniform(0.2 * h, h)
                draw.ellipse([cx - 4, cy - 12, cx + 4, cy + 12], fill=_tone((90, 100, 105), rng, 25))
            draw.rectangle([x, 0, x + 2, h], fill=(40, 40, 44))
            x += pw
    elif kind == "trees":
        draw.rectangle([0, 0, w, h], fill=_tone((50, 80, 50), rng, 12))
        for _ in range(int(w * h / 40)):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, 7)
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_tone((60, 105, 55), rng, 25))
        for _ in range(int(rng.integers(2, 6))):
            x = rng.uniform(0, w)
            draw.rectangle([x, h * rng.uniform(0.2, 0.6), x + rng.uniform(2, 5), h], fill=_tone((70, 55, 40), rng))
    elif kind == "concrete":
        draw.rectangle([0, 0, w, h], fill=_tone((165, 160, 150), rng, 20))
        for y in np.arange(rng.uniform(4, 12), h, rng.uniform(14, 26)):
            draw.line([(0, y), (w, y)], fill=_tone((120, 118, 112), rng), width=2)
        for _ in range(int(w / 10)):
            x, y = rng.uniform(0, w), rng.uniform(0, h * 0.8)
            draw.rectangle([x, y, x + rng.uniform(6, 14), y + rng.uniform(6, 12)], fill=_tone((60, 70, 80), rng))
    elif kind == "shop":
        draw.rectangle([0, 0, w, h], fill=_tone((200, 195, 185), rng, 20))
        x = 0
        while x < w:
            sw = int(rng.integers(w // 8, w // 4))
            draw.rectangle([x, 0, x + sw, h * rng.uniform(0.15, 0.3)], fill=tuple(int(v) for v in rng.integers(40, 230, 3)))
            draw.rectangle([x + 2, h * 0.35, x + sw - 2, h], fill=_tone((90, 100, 110), rng, 30))
            for _ in range(int(rng.integers(0, 3))):  # posters
                px, py = x + rng.uniform(2, max(3, sw - 10)), rng.uniform(0.4 * h, 0.8 * h)
                draw.rectangle([px, py, px + 7, py + 10], fill=tuple(int(v) for v in rng.integers(30, 250, 3)))
            x += sw
    elif kind == "fence":
        draw.rectangle([0, 0, w, h], fill=_tone((120, 140, 110), rng, 25))
        for _ in range(int(w * h / 90)):  # hedge behind the fence
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, 5)
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_tone((80, 120, 70), rng, 20))
        for x in np.arange(0, w, rng.uniform(3, 6)):
            draw.line([(x, h * 0.25), (x, h)], fill=(60, 60, 62), width=1)
        for y in (h * 0.3, h * 0.9):
            draw.line([(0, y), (w, y)], fill=(55, 55, 58), width=2)
    else:
        raise ValueError(f"unknown wall {kind!r}; one of {WALLS}")


def _draw_ground(draw: ImageDraw.ImageDraw, rng: np.random.Generator, kind: str, top: int, h: int,
                 w: int) -> None:
    """The ground from row ``top`` down, with perspective joints for paving."""
    base = {"tiles": (175, 170, 160), "asphalt": (85, 85, 88), "grass": (80, 120, 60),
            "pavers": (150, 120, 100)}[kind]
    base = _tone(base, rng, 15)
    draw.rectangle([0, top, w, h], fill=base)
    if kind in ("tiles", "pavers"):
        line = _tone(tuple(0.72 * c for c in base), rng, 6)
        y, step = float(top), rng.uniform(2, 4)
        while y < h:  # joints widen towards the camera
            draw.line([(0, y), (w, y)], fill=line)
            y += step
            step *= 1.25
        vanish = rng.uniform(0, w)
        spacing = rng.uniform(10, 18) if kind == "tiles" else rng.uniform(5, 9)
        for x in np.arange(-w, 2 * w, spacing):
            draw.line([(vanish + (x - vanish) * 0.3, top), (x, h)], fill=line)


def _draw_clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, top: int, h: int, w: int) -> None:
    """Street furniture standing on the ground."""
    for _ in range(int(rng.integers(3, 9))):
        kind = ("pole", "bin", "bike", "bench", "pot", "sign")[int(rng.integers(6))]
        x = rng.uniform(0, w)
        base = top + rng.uniform(0.05, 0.45) * (h - top)
        col = tuple(int(v) for v in rng.integers(30, 200, 3))
        if kind == "pole":
            draw.rectangle([x, 0, x + rng.uniform(2, 4), base], fill=_tone((90, 92, 96), rng, 20))
        elif kind == "bin":
            draw.rectangle([x, base - 14, x + 9, base], fill=col)
        elif kind == "bike":
            r = rng.uniform(5, 7)
            for cx in (x, x + 2.6 * r):
                draw.ellipse([cx - r, base - 2 * r, cx + r, base], outline=(30, 30, 30), width=1)
            draw.line([(x, base - r), (x + 1.3 * r, base - 2.2 * r), (x + 2.6 * r, base - r)], fill=col, width=2)
        elif kind == "bench":
            draw.rectangle([x, base - 9, x + 26, base - 6], fill=_tone((110, 80, 50), rng))
            draw.rectangle([x + 2, base - 6, x + 4, base], fill=(50, 50, 50))
            draw.rectangle([x + 22, base - 6, x + 24, base], fill=(50, 50, 50))
        elif kind == "pot":
            draw.rectangle([x, base - 8, x + 10, base], fill=_tone((120, 80, 60), rng))
            draw.ellipse([x - 3, base - 22, x + 13, base - 6], fill=_tone((50, 110, 50), rng))
        else:
            draw.rectangle([x, base - 30, x + 2, base], fill=(70, 70, 70))
            draw.rectangle([x - 5, base - 34, x + 7, base - 24], fill=col)


def make_scene(rng: np.random.Generator, wall: str, ground: str, horizon: float, height: int,
               width: int) -> np.ndarray:
    """A camera's scene: four boxes wide and a quarter taller than a box, uint8 (Hs, Ws, 3).

    Drawn at the 128 x 64 box scale whatever the output size (textures keep their look), given
    grime (smooth multiplicative noise) and a vertical light falloff, then resized.
    """
    bh, bw = 160, 256
    top = int(bh * horizon)
    canvas = Image.new("RGB", (bw, bh))
    draw = ImageDraw.Draw(canvas)
    _draw_wall(draw, rng, wall, top, bw)
    _draw_ground(draw, rng, ground, top, bh, bw)
    _draw_clutter(draw, rng, top, bh, bw)
    img = np.asarray(canvas, dtype=np.float32)
    grime = 0.82 + 0.3 * _noise(rng, (bh, bw), 24) + 0.12 * _noise(rng, (bh, bw), 4)
    if ground == "grass":
        grime[top:] *= 0.85 + 0.3 * rng.random((bh - top, bw)).astype(np.float32)
    elif ground == "asphalt":
        grime[top:] *= 0.9 + 0.2 * rng.random((bh - top, bw)).astype(np.float32)
    img *= grime[..., None]
    grey = img.mean(axis=2, keepdims=True)
    img = grey + SCENE_SATURATION * (img - grey)  # street scenes are muted next to clothes
    img = np.clip(img, 0, 255).astype(np.uint8)
    h, w = round(height * 1.25), width * 4
    out = Image.fromarray(img).resize((w, h), Image.LANCZOS) if (h, w) != (bh, bw) else Image.fromarray(img)
    return np.asarray(out.filter(ImageFilter.GaussianBlur(0.5)))


def background_crop(camera: Camera, rng: np.random.Generator, height: int, width: int,
                    centre: float | None = None) -> np.ndarray:
    """A (height, width) crop of the camera's scene at a random place (float32, 0..255)."""
    sh, sw = camera.scene.shape[:2]
    x = rng.integers(0, sw - width + 1) if centre is None else int(np.clip(centre * (sw - width), 0, sw - width))
    y = int(rng.integers(0, sh - height + 1))
    return camera.scene[y: y + height, x: x + width].astype(np.float32)


def apply_camera(image: np.ndarray, camera: Camera, rng: np.random.Generator, light: float = 1.0) -> np.ndarray:
    """Light level and colour cast, contrast, lens blur and sensor noise: float (H, W, 3) 0..255 in,
    uint8 out (JPEG compression happens when the file is written, at ``camera.jpeg_quality``)."""
    x = image / 255.0
    x = x * (camera.gain * light) * np.asarray(camera.cast, dtype=np.float32)
    x = (x - 0.5) * camera.contrast + 0.5
    x = np.clip(x, 0.0, 1.0) ** 0.95
    img = Image.fromarray((x * 255.0 + 0.5).astype(np.uint8))
    if camera.blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(camera.blur))
    out = np.asarray(img, dtype=np.float32)
    if camera.noise > 0:
        h, w = out.shape[:2]
        out = out + rng.normal(0.0, camera.noise, (h, w, 1)) + rng.normal(0.0, camera.noise * 0.5, (h, w, 3))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    """The JPEG file of an uint8 (H, W, 3) image (deterministic for a given libjpeg)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()
