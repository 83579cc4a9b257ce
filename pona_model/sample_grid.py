"""PNG grids of condition | target pose | generated | target, one row per pair (training samples,
generation previews, and the columns of the paper's qualitative figures)."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from poseformats.keypoints import draw_skeleton
from runtime.atomic import atomic_path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) in [-1, 1] -> (B,H,W,3) uint8, rounding to nearest."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid_rows(condition: torch.Tensor, kp_target: torch.Tensor, generated: torch.Tensor,
              target: torch.Tensor) -> np.ndarray:
    """The grid as one uint8 array (rows = pairs, columns = condition, pose, generated, target)."""
    h, w = condition.shape[-2:]
    cond, gen, tgt = to_uint8(condition), to_uint8(generated), to_uint8(target)
    rows = []
    for i in range(cond.shape[0]):
        pose = draw_skeleton(np.asarray(kp_target[i].cpu()), h, w)
        rows.append(np.concatenate([cond[i], pose, gen[i], tgt[i]], axis=1))
    return np.concatenate(rows, axis=0)


def save_sample_grid(path: str | os.PathLike, condition: torch.Tensor, kp_target: torch.Tensor,
                     generated: torch.Tensor, target: torch.Tensor) -> None:
    """Write the grid atomically as PNG."""
    with atomic_path(path) as tmp:
        Image.fromarray(grid_rows(condition, kp_target, generated, target)).save(tmp, format="PNG")
