"""Evaluation features: the model's feature of an image plus that of its mirror image, summed and
L2-normalised (layumi's test protocol), and cosine distances between such features.

Flip invariance holds by construction and exactly: the two passes see ``x`` and ``flip(x)`` as
separate batches of the same size, ``flip(flip(x)) == x`` bit for bit and floating-point addition
commutes, so the feature of ``flip(x)`` is bitwise the feature of ``x``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from runtime.device import autocast


@torch.no_grad()
def flip_sum_features(model: nn.Module, images: torch.Tensor, *, flip: bool = True,
                      dtype: torch.dtype = torch.float32,
                      memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """``normalize(f(x) + f(flip_w(x)))`` for a batch (N, 3, H, W); ``model`` must be in eval mode.
    With ``flip=False``: ``normalize(f(x))``. ``dtype``: the autocast precision (``reid.precision``;
    float32 = none); the features are summed and normalised in fp32 either way."""
    if model.training:
        raise RuntimeError("flip_sum_features needs the model in eval mode (model.eval()): in training mode "
                           "it returns logits and uses dropout")
    with autocast(images.device, dtype):
        feature = model(images.contiguous(memory_format=memory_format)).float()
        if flip:
            mirrored = torch.flip(images, dims=[3]).contiguous(memory_format=memory_format)
            feature = feature + model(mirrored).float()
    return nn.functional.normalize(feature, p=2, dim=1)


def extract_features(model: nn.Module, loader: Any, device: torch.device, *, flip: bool = True,
                     dtype: torch.dtype = torch.float32,
                     memory_format: torch.memory_format = torch.contiguous_format, progress: bool = True,
                     desc: str = "features") -> tuple[torch.Tensor, np.ndarray, np.ndarray, list[str]]:
    """Features (N, D) on the CPU, identities, 0-based cameras and paths of every image of ``loader``
    (batches of torchreid dataset items). The model is put in eval mode and restored afterwards."""
    was_training = model.training
    model.eval()
    features, pids, camids, paths = [], [], [], []
    try:
        for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, dynamic_ncols=True, leave=False):
            images = batch["img"].to(device, non_blocking=True)
            features.append(flip_sum_features(model, images, flip=flip, dtype=dtype, memory_format=memory_format).cpu())
            pids.append(np.asarray(batch["pid"], dtype=np.int64))
            camids.append(np.asarray(batch["camid"], dtype=np.int64))
            paths.extend(batch["impath"])
    finally:
        model.train(was_training)
    if not features:
        raise ValueError(f"{desc}: the loader yielded no images")
    return torch.cat(features), np.concatenate(pids), np.concatenate(camids), paths


def cosine_distance(query: torch.Tensor, gallery: torch.Tensor) -> np.ndarray:
    """1 - cosine similarity of L2-normalised features: (Nq, Ng), float64."""
    q = nn.functional.normalize(query.double(), dim=1)
    g = nn.functional.normalize(gallery.double(), dim=1)
    return (1.0 - q @ g.T).numpy()
