"""Reading images for scoring: 8-bit RGB arrays, one resize method, PATN's 5-panel strips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from runtime.images import IMAGE_EXTENSIONS

VIS_SUFFIX = "_vis.jpg"
VIS_PANELS = 5  # condition | condition pose | target | target pose | generated
VIS_CONDITION, VIS_TARGET, VIS_GENERATED = 0, 2, 4
RESIZE_DESCRIPTION = ("PIL bicubic on 8-bit RGB (Pillow's resize, antialiased when shrinking), "
                      "result rounded to uint8; keypoints scaled by poseformats.keypoints.scale_keypoints")


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """uint8 (H, W, 3) RGB of an image file, with an error naming the file when it does not decode."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise OSError(f"image {path} cannot be decoded ({exc}); replace or regenerate it") from exc


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image file, read from its header."""
    with Image.open(path) as im:
        return im.height, im.width


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at (H, W) = ``size`` (unchanged when it already is), by the one resize method."""
    h, w = int(size[0]), int(size[1])
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BICUBIC), dtype=np.uint8)


def vis_panel(strip: np.ndarray, panel: int) -> np.ndarray:
    """Panel ``panel`` (0..4) of a PATN 5-panel strip (condition | condition pose | target | target pose |
    generated), which is five equal-width images side by side."""
    width = strip.shape[1]
    if width % VIS_PANELS:
        raise ValueError(f"a PATN _vis strip is {VIS_PANELS} panels wide; width {width} is not a multiple of 5")
    w = width // VIS_PANELS
    return strip[:, panel * w:(panel + 1) * w]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (not _vis strips), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.endswith(VIS_SUFFIX))
