"""The body mask behind mask-SSIM and mask-IS (Ma et al.'s Market-1501 protocol, kept by PATN and PoNA).

Drawn from the TARGET pose: for every edge of ``pose.MASK_LIMBS`` whose two joints are present, the
rectangle of half-width 4 around the segment (PATN's four-vertex polygon, boundary included); a disc
of radius 4 at every present joint (pixel centres strictly closer than 4); then a 5 x 5 square
dilation followed by a 5 x 5 erosion (a morphological closing that fills the gaps between the
pieces), with mirrored borders as scikit-image's morphology uses. Pixel (row, col) has its centre at
(row, col), the frame of the keypoints.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from poseformats.keypoints import MASK_LIMBS, MISSING, N_JOINTS

HALF_WIDTH = 4.0
RADIUS = 4.0
CLOSING = 5
_EPS = 1e-9  # a pixel centre on a rectangle's edge counts as inside, whatever the rounding

MASK_SETTINGS: dict[str, object] = {
    "pose": "target keypoints, scaled to the compared size",
    "limbs": " ".join(f"{a}-{b}" for a, b in MASK_LIMBS) + " (OpenPose-18 joint indices)",
    "limb_half_width": HALF_WIDTH,
    "joint_radius": RADIUS,
    "closing": f"{CLOSING} x {CLOSING} square dilation then erosion, mirrored borders",
    "background": "set to 0 (black) in both images",
}


def body_mask(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask of the body drawn from (18, 2) (y, x) keypoints, -1 = missing."""
    kp = np.asarray(keypoints)
    if kp.shape != (N_JOINTS, 2):
        raise ValueError(f"body_mask takes one pose (18, 2), got shape {kp.shape}")
    kp = kp.astype(np.float64)
    present = (kp != MISSING).all(axis=1)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    mask = np.zeros((height, width), dtype=bool)
    for a, b in MASK_LIMBS:
        if not (present[a] and present[b]):
            continue
        axis = kp[b] - kp[a]
        length = float(np.hypot(*axis))
        if length == 0.0:
            continue  # both joints on one pixel: the discs below cover it
        unit = axis / length
        dy, dx = rows - kp[a, 0], cols - kp[a, 1]
        along = dy * unit[0] + dx * unit[1]
        across = np.abs(dy * unit[1] - dx * unit[0])
        mask |= (along >= -_EPS) & (along <= length + _EPS) & (across <= HALF_WIDTH + _EPS)
    for y, x in kp[present]:
        mask |= (rows - y) ** 2 + (cols - x) ** 2 < RADIUS**2
    mask = ndimage.maximum_filter(mask, size=CLOSING, mode="reflect")
    return ndimage.minimum_filter(mask, size=CLOSING, mode="reflect")


def apply_mask(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Images (H, W, 3) or (B, H, W, 3) with the background (mask False) set to 0, same dtype."""
    images = np.asarray(images)
    masks = np.asarray(masks, dtype=bool)
    if masks.shape != images.shape[:-1]:
        raise ValueError(f"masks of shape {masks.shape} do not fit images of shape {images.shape}")
    return images * masks[..., None].astype(images.dtype)
