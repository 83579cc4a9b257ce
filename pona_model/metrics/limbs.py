"""Does the generated image put limbs where the target pose puts them? The limb-region score.

For a pair (condition, target) the *limb region* is the set of pixels the target pose gives to an arm
or a leg and the condition pose does not: pixel centres within ``radius`` of one of the target
skeleton's eight arm and leg segments (shoulder-elbow, elbow-wrist, hip-knee, knee-ankle, each side;
a segment counts when both its joints are present), minus those within ``radius`` of the condition
skeleton's. ``radius`` is the image height / 64: 1 pixel at 64 x 32 (a limb there is about 3 pixels
wide), 2 at 128 x 64.

In that region the generated image is compared with the target and with the condition, mean |difference|
per pixel and channel on the [0, 1] scale, each time after a per-channel gain that gives the generated
image the compared image's mean colour over that image's own body mask (``masks.body_mask`` of its
pose). The pair *holds* when the generated image is closer to the target: margin = L1 to the
condition - L1 to the target > 0. The score is the fraction of pairs that hold. The target itself
scores 1 and the condition image handed back unchanged (the identity baseline) 0: an image is its own
gain match.

Why the gain: the target was taken by another camera (gain, colour cast, scene), which is not among a
generator's inputs; the oracle rendering (the condition's person in the target's exact shot under the
condition's camera, ``synthmarket.oracle``) is the best any generator can do, and with plain L1 it
is closer to the target in only 0.745 of SynthMarket's 2,000 test pairs, because its limbs carry the
condition camera's colours; with the gain it holds for 0.965 (docs/evaluation.md has the whole
calibration, ``bench/limb_region_calibration.py`` measures it). ``plain`` (no gain) is reported beside it.

Why the condition's limbs are taken out: where both poses put a limb the two real images show the
same sleeve or trouser, so those pixels cannot tell drawing the target's limb from copying the
condition's; what is left is where only the target has a limb, the pixels a generator gets right by
moving it. It widens the gap between the oracle in the right pose and in a wrong one (0.954 and 0.378
without, 0.965 and 0.371 with).

A pair is left out (margin NaN, counted) when its region is empty (no arm or leg segment of the
target lies outside the condition's) or the target and the condition are equal over it.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from pona_model.metrics.masks import body_mask
from poseformats.keypoints import ARMS, LEGS, MISSING, N_JOINTS

# The arm and leg segments of the OpenPose-18 skeleton: upper and lower arm, thigh and shin, each side.
LIMB_SEGMENTS: tuple[tuple[int, int], ...] = tuple(pair for chain in (*ARMS, *LEGS) for pair in pairwise(chain))
RADIUS_PER_HEIGHT = 1 / 64
BAR = 0.8  # issue 21's bar: the generated image is closer to the target for at least 80 % of the pairs

LIMB_REGION_SETTINGS: dict[str, object] = {
    "region": "pixel centres within radius of the TARGET pose's arm and leg segments (both joints present), "
              "minus those within radius of the CONDITION pose's; keypoints at the compared size",
    "segments": " ".join(f"{a}-{b}" for a, b in LIMB_SEGMENTS) + " (OpenPose-18 joint indices)",
    "radius": "image height / 64 pixels (1 at 64 x 32)",
    "gain": "before each comparison the generated image is scaled per channel to the compared image's mean colour "
            "over that image's body mask (masks.body_mask of its own pose); 'plain' skips it",
    "distance": "mean |difference| over the region's pixels and the 3 channels, 8-bit values / 255",
    "holds": "margin = L1 to the condition - L1 to the target > 0",
    "value": "fraction of the pairs that hold, of those whose region is not empty and where target and condition "
             "differ",
    "bar": BAR,
}


def default_radius(height: int) -> float:
    return height * RADIUS_PER_HEIGHT


def limb_region(keypoints: np.ndarray, height: int, width: int, radius: float | None = None) -> np.ndarray:
    """Boolean (height, width): pixel centres within ``radius`` (default ``default_radius``) of an arm
    or leg segment of the (18, 2) (y, x) pose; segments with a missing joint are skipped."""
    kp = np.asarray(keypoints)
    if kp.shape != (N_JOINTS, 2):
        raise ValueError(f"limb_region takes one pose (18, 2), got shape {kp.shape}")
    r = default_radius(height) if radius is None else float(radius)
    kp = kp.astype(np.float64)
    present = (kp != MISSING).all(axis=1)
    points = np.stack(np.mgrid[0:height, 0:width], axis=-1).astype(np.float64)  # (H, W, 2) pixel centres
    region = np.zeros((height, width), dtype=bool)
    for a, b in LIMB_SEGMENTS:
        if not (present[a] and present[b]):
            continue
        axis = kp[b] - kp[a]
        length2 = float(axis @ axis)
        t = np.clip((points - kp[a]) @ axis / length2, 0.0, 1.0) if length2 else np.zeros((height, width))
        nearest = kp[a] + t[..., None] * axis
        region |= ((points - nearest) ** 2).sum(-1) <= r * r + 1e-9
    return region


def pair_region(kp_target: np.ndarray, kp_condition: np.ndarray, height: int, width: int,
                radius: float | None = None) -> np.ndarray:
    """The target's limb region minus the condition's (the module docstring says why)."""
    return (limb_region(kp_target, height, width, radius)
            & ~limb_region(kp_condition, height, width, radius))


def gain_matched(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` (float) scaled per channel to ``reference``'s mean colour over ``mask``; a channel is left
    as it is where the mask is empty or the image's mean there is 0. An image is its own gain match."""
    image = np.asarray(image, dtype=np.float64)
    if not mask.any():
        return image
    mine, theirs = image[mask].mean(0), np.asarray(reference, dtype=np.float64)[mask].mean(0)
    return image * np.where(mine > 0, theirs / np.where(mine > 0, mine, 1.0), 1.0)


def _l1(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64)[region] - np.asarray(b, np.float64)[region]).mean() / 255.0)


def limb_margins(generated: np.ndarray, target: np.ndarray, condition: np.ndarray, kp_targets: np.ndarray,
                 kp_conditions: np.ndarray, radius: float | None = None) -> dict[str, np.ndarray]:
    """Per pair of uint8 (B, H, W, 3) images and (B, 18, 2) poses at their size: ``margin`` (L1 to the
    condition - L1 to the target over the pair's region, gain-matched; NaN where the pair is left out),
    ``margin_plain`` (the same without the gain) and ``pixels`` (the region's size)."""
    generated, target, condition = (np.asarray(x) for x in (generated, target, condition))
    if not generated.shape == target.shape == condition.shape or generated.ndim != 4:
        raise ValueError(f"generated, target and condition must be (B, H, W, 3) of one shape, got "
                         f"{generated.shape}, {target.shape}, {condition.shape}")
    n, height, width = generated.shape[:3]
    out = {"margin": np.full(n, np.nan), "margin_plain": np.full(n, np.nan), "pixels": np.zeros(n, np.int64)}
    for i in range(n):
        region = pair_region(kp_targets[i], kp_conditions[i], height, width, radius)
        out["pixels"][i] = int(region.sum())
        if not region.any() or _l1(target[i], condition[i], region) == 0.0:
            continue
        g, t, c = generated[i], target[i], condition[i]
        out["margin_plain"][i] = _l1(g, c, region) - _l1(g, t, region)
        to_target = gain_matched(g, t, body_mask(kp_targets[i], height, width))
        to_condition = gain_matched(g, c, body_mask(kp_conditions[i], height, width))
        out["margin"][i] = _l1(to_condition, c, region) - _l1(to_target, t, region)
    return out


def _fraction(margins: np.ndarray) -> tuple[float | None, np.ndarray]:
    scored = np.asarray(margins, dtype=np.float64)
    scored = scored[np.isfinite(scored)]
    return (float((scored > 0).mean()) if len(scored) else None), scored


def limb_region_score(margins: np.ndarray, plain: np.ndarray | None = None) -> dict[str, Any]:
    """The metric entry from the per-pair margins (NaN = left out), and from the plain ones if given:
    the fraction that holds, the counts, the mean margin and whether it reaches ``BAR``."""
    value, scored = _fraction(margins)
    left_out = int(len(np.asarray(margins)) - len(scored))
    if value is None:
        return {"value": None, "skipped": "no pair has a limb region where the target and the condition differ",
                "pairs_left_out": left_out, "settings": LIMB_REGION_SETTINGS}
    entry: dict[str, Any] = {"value": value, "pairs_scored": len(scored), "pairs_held": int((scored > 0).sum()),
                             "pairs_left_out": left_out, "mean_margin_l1": float(scored.mean()),
                             "reaches_bar": value >= BAR}
    if plain is not None:
        entry["plain"] = _fraction(plain)[0]
    entry["settings"] = LIMB_REGION_SETTINGS
    return entry
