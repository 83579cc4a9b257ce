"""The pose vocabulary: OpenPose COCO-18 joints, skeleton edges, pose maps and keypoint geometry.

Keypoints are integer arrays or tensors of shape (18, 2) or (B, 18, 2) holding (y, x) = (row, column)
in the stored image's pixel frame; a joint is missing when either coordinate is ``MISSING`` (-1).
Functions here accept numpy arrays and torch tensors alike and return the same kind they were given.
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch
from PIL import Image, ImageDraw

N_JOINTS = 18
MISSING = -1

# Index order of the OpenPose COCO-18 model that produced PATN's Market-1501 / DeepFashion annotations.
# PATN's LABELS list names 14..17 "Leye, Reye, Lear, Rear", but its own skeleton joins Rsho (2) to
# joint 16 and Lsho (5) to joint 17, and OpenPose documents 14..17 as REye, LEye, REar, LEar: the
# names below follow OpenPose. Indices, LIMBS and FLIP_PERMUTATION are the same under either naming.
JOINT_NAMES: tuple[str, ...] = (
    "nose", "neck",
    "Rsho", "Relb", "Rwri",
    "Lsho", "Lelb", "Lwri",
    "Rhip", "Rkne", "Rank",
    "Lhip", "Lkne", "Lank",
    "Reye", "Leye", "Rear", "Lear",
)  # fmt: skip
NOSE, NECK = 0, 1
R_SHOULDER, R_ELBOW, R_WRIST = 2, 3, 4
L_SHOULDER, L_ELBOW, L_WRIST = 5, 6, 7
R_HIP, R_KNEE, R_ANKLE = 8, 9, 10
L_HIP, L_KNEE, L_ANKLE = 11, 12, 13
R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17

# Each side's arm and leg as a chain of joints from the trunk outwards, the right side first.
ARMS: tuple[tuple[int, int, int], ...] = ((R_SHOULDER, R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW, L_WRIST))
LEGS: tuple[tuple[int, int, int], ...] = ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE))

# The joints whose presence makes a pose usable as a PATN pair endpoint.
TORSO_JOINTS: tuple[int, ...] = (R_SHOULDER, L_SHOULDER, R_HIP, L_HIP)
# The head box of PCKh is spanned by these.
HEAD_JOINTS: tuple[int, ...] = (NOSE, NECK, R_EYE, L_EYE, R_EAR, L_EAR)

# OpenPose-18 skeleton (the 19 part-affinity edges), as (from, to) joint indices; for drawing.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
    (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)  # fmt: skip

# Edges of the body mask behind mask-SSIM / mask-IS (the PATN / Deformable-GAN evaluation): the first
# 17 skeleton edges, neck to both ears, and four edges closing the torso and the head.
MASK_LIMBS: tuple[tuple[int, int], ...] = LIMBS[:17] + (
    (1, 16),
    (1, 17),
    (8, 11),
    (11, 5),
    (8, 2),
    (16, 17),
)

# out[i] = in[FLIP_PERMUTATION[i]] swaps every left joint with its right twin (an involution).
FLIP_PERMUTATION: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

Keypoints = np.ndarray | torch.Tensor


def _check_shape(kp: Keypoints) -> None:
    if kp.ndim not in (2, 3) or tuple(kp.shape[-2:]) != (N_JOINTS, 2):
        raise ValueError(f"keypoints must have shape (18, 2) or (B, 18, 2), got {tuple(kp.shape)}")


def visible(kp: Keypoints) -> Keypoints:
    """Boolean (..., 18): True where neither coordinate is MISSING."""
    _check_shape(kp)
    return (kp != MISSING).all(-1)


def n_visible(kp: Keypoints) -> int:
    """Number of present joints of one pose."""
    if kp.ndim != 2:
        raise ValueError(f"n_visible takes one pose (18, 2), got shape {tuple(kp.shape)}")
    return int(visible(kp).sum())


def has_torso(kp: Keypoints) -> bool:
    """True when both shoulders and both hips are present (PATN's rule for usable pair images)."""
    if kp.ndim != 2:
        raise ValueError(f"has_torso takes one pose (18, 2), got shape {tuple(kp.shape)}")
    return bool(visible(kp)[list(TORSO_JOINTS)].all())


def pose_maps(keypoints: torch.Tensor, height: int, width: int, sigma: float = 6.0) -> torch.Tensor:
    """Gaussian pose maps (B, 18, H, W) float32 from keypoints (B, 18, 2); (18, 2) gives (18, H, W).

    Channel i is exp(-((y - y_i)^2 + (x - x_i)^2) / (2 sigma^2)) with no cut-off, all zeros for a
    missing joint. The 2-D Gaussian is the outer product of a row and a column Gaussian, so the whole
    batch costs B*18*(H + W) exponentials and one broadcast multiply, on the keypoints' device.
    """
    kp = torch.as_tensor(keypoints)
    _check_shape(kp)
    single = kp.ndim == 2
    if single:
        kp = kp.unsqueeze(0)
    present = visible(kp).to(torch.float32)  # (B, 18)
    centre = kp.to(torch.float32)
    denom = 2.0 * float(sigma) ** 2
    rows = torch.arange(height, device=kp.device, dtype=torch.float32)
    cols = torch.arange(width, device=kp.device, dtype=torch.float32)
    gy = torch.exp(-((rows - centre[..., 0:1]) ** 2) / denom) * present[..., None]  # (B, 18, H)
    gx = torch.exp(-((cols - centre[..., 1:2]) ** 2) / denom)  # (B, 18, W)
    maps = gy[..., :, None] * gx[..., None, :]
    return maps[0] if single else maps


def scale_keypoints(kp: Keypoints, from_size: tuple[int, int], to_size: tuple[int, int]) -> Keypoints:
    """Move keypoints from an image of size (H, W) = from_size to the same image resized to to_size.

    Pixel centres are mapped, as an image resize does: y' = (y + 0.5) * H'/H - 0.5, rounded half up,
    so upscaling by an integer factor and scaling back returns the original coordinates. Missing
    joints stay MISSING; the result has the input's kind and dtype.
    """
    _check_shape(kp)
    scale = [to_size[0] / from_size[0], to_size[1] / from_size[1]]
    if isinstance(kp, torch.Tensor):
        factor = torch.tensor(scale, dtype=torch.float64, device=kp.device)
        moved = torch.floor((kp.to(torch.float64) + 0.5) * factor).to(kp.dtype)
        return torch.where(visible(kp)[..., None], moved, torch.full_like(kp, MISSING))
    factor = np.asarray(scale, dtype=np.float64)
    moved = np.floor((kp.astype(np.float64) + 0.5) * factor).astype(kp.dtype)
    return np.where(visible(kp)[..., None], moved, np.asarray(MISSING, dtype=kp.dtype))


def flip_keypoints(kp: Keypoints, width: int) -> Keypoints:
    """Keypoints of the horizontally mirrored image: x -> width - 1 - x, left and right joints swapped."""
    _check_shape(kp)
    if isinstance(kp, torch.Tensor):
        mirrored = kp.clone()
        perm = torch.tensor(FLIP_PERMUTATION, device=kp.device)
    else:
        mirrored = kp.copy()
        perm = np.asarray(FLIP_PERMUTATION)
    present = visible(kp)
    mirrored[..., 1][present] = width - 1 - kp[..., 1][present]
    return mirrored[..., perm, :]


def limb_colours() -> list[tuple[int, int, int]]:
    """One saturated RGB colour per entry of LIMBS, hues evenly spread (drawings of poses)."""
    n = len(LIMBS)
    return [tuple(round(255 * c) for c in colorsys.hsv_to_rgb(i / n, 1.0, 1.0)) for i in range(n)]


def _draw_on(canvas: Image.Image, kp: np.ndarray) -> None:
    height, width = canvas.height, canvas.width
    line = max(1, round(min(height, width) / 32))
    radius = line
    draw = ImageDraw.Draw(canvas)
    present = visible(kp)
    for (a, b), colour in zip(LIMBS, limb_colours(), strict=True):
        if present[a] and present[b]:
            draw.line(
                [(int(kp[a, 1]), int(kp[a, 0])), (int(kp[b, 1]), int(kp[b, 0]))], fill=colour, width=line
            )
    for y, x in kp[present]:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(255, 255, 255))


def _as_numpy_pose(kp: Keypoints) -> np.ndarray:
    kp = kp.detach().cpu().numpy() if isinstance(kp, torch.Tensor) else np.asarray(kp)
    if kp.shape != (N_JOINTS, 2):
        raise ValueError(f"drawing takes one pose (18, 2), got shape {kp.shape}")
    return kp.astype(np.int64)


def draw_skeleton(kp: Keypoints, height: int, width: int) -> np.ndarray:
    """The skeleton on black, uint8 (H, W, 3): one colour per limb, white joints."""
    canvas = Image.new("RGB", (width, height))
    _draw_on(canvas, _as_numpy_pose(kp))
    return np.asarray(canvas, dtype=np.uint8)


def overlay_skeleton(image: np.ndarray, kp: Keypoints) -> np.ndarray:
    """A copy of an uint8 (H, W, 3) image with the skeleton drawn over it."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"overlay_skeleton needs an uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    canvas = Image.fromarray(image)
    _draw_on(canvas, _as_numpy_pose(kp))
    return np.asarray(canvas, dtype=np.uint8)
