"""Comparison pictures of generated images: the N-pair grid and the same-person-many-poses sheet.

* Grid (``comparison_grid``): one row per pair, columns condition | target pose | generated | target
  (the layout of the training sample grids, whose ``grid_rows`` draws it).
* Sheet (``pose_sheet``), like the paper's Figures 5-6: one block per condition image; the block's first
  row is the condition image followed by K target poses (skeletons), then one row of generated images
  per method (first cell blank), then a row of the real targets (first cell blank). Blocks are
  separated by a white band.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from pona_model.sample_grid import grid_rows
from poseformats.keypoints import draw_skeleton
from runtime.atomic import atomic_path

GAP = 4  # white pixels between sheet blocks


def _to_unit_range(images: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) images -> (B, 3, H, W) in [-1, 1]; ``sample_grid.to_uint8`` inverts it exactly."""
    batch = torch.from_numpy(np.stack([np.asarray(i, dtype=np.uint8) for i in images]))
    return batch.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def comparison_grid(conditions: Sequence[np.ndarray], kp_targets: Sequence[np.ndarray],
                    generated: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 grid, one row per pair: condition | target pose | generated | target. All images share
    one size, and the target keypoints are in that frame."""
    n = len(conditions)
    if not n or not (len(kp_targets) == len(generated) == len(targets) == n):
        raise ValueError(f"need the same non-zero number of conditions, poses, generated and targets, got "
                         f"{n}, {len(kp_targets)}, {len(generated)}, {len(targets)}")
    kp = torch.from_numpy(np.stack([np.asarray(k, dtype=np.int64) for k in kp_targets]))
    return grid_rows(_to_unit_range(conditions), kp, _to_unit_range(generated), _to_unit_range(targets))


@dataclass
class SheetBlock:
    """One condition image and K target poses with, per method, the K generated images."""

    condition: np.ndarray
    kp_targets: list[np.ndarray]
    generated: Mapping[str, list[np.ndarray]]
    targets: list[np.ndarray] | None = None
    label: str = field(default="")


def pose_sheet(blocks: Sequence[SheetBlock]) -> np.ndarray:
    """The same-person-many-poses sheet as one uint8 image (layout in the module docstring)."""
    if not blocks:
        raise ValueError("the sheet needs at least one block")
    h, w = np.asarray(blocks[0].condition).shape[:2]
    k_max = max(len(b.kp_targets) for b in blocks)
    width = (k_max + 1) * w
    blank = np.zeros((h, w, 3), dtype=np.uint8)

    def row(first: np.ndarray, cells: Sequence[np.ndarray]) -> np.ndarray:
        cells = [np.asarray(c, dtype=np.uint8) for c in cells]
        for c in cells:
            if c.shape != (h, w, 3):
                raise ValueError(f"sheet images must all be {h} x {w} x 3, got {c.shape}")
        padding = [blank] * (k_max - len(cells))
        return np.concatenate([np.asarray(first, dtype=np.uint8), *cells, *padding], axis=1)

    parts: list[np.ndarray] = []
    for i, block in enumerate(blocks):
        k = len(block.kp_targets)
        rows = [row(block.condition, [draw_skeleton(kp, h, w) for kp in block.kp_targets])]
        for method, images in block.generated.items():
            if len(images) != k:
                raise ValueError(f"block {i}: {len(images)} {method!r} images for {k} poses")
            rows.append(row(blank, images))
        if block.targets is not None:
            if len(block.targets) != k:
                raise ValueError(f"block {i}: {len(block.targets)} targets for {k} poses")
            rows.append(row(blank, block.targets))
        if parts:
            parts.append(np.full((GAP, width, 3), 255, dtype=np.uint8))
        parts.append(np.concatenate(rows, axis=0))
    return np.concatenate(parts, axis=0)


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel repeated ``factor`` x ``factor`` times (nearest neighbour: nothing smoothed away)."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an uint8 (H, W, 3) array as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
