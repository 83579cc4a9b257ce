"""Data for the synth pose estimator: annotated crops held in memory, an identity split, and batch
augmentation in torch (flips with the left / right joints swapped, small shifts and scales, colour
jitter, blur and noise like SynthMarket's cameras and a blurry generator).

Keypoints here are continuous (y, x) in the pixel-centre frame (pixel i has centre i). An annotation
y at 128 x 64 is the pixel holding the joint, so its centre is y; at 64 x 32 the same point is
(y + 0.5) / 2 - 0.5, and rounding it half up gives exactly the annotation
``poseformats.keypoints.scale_keypoints`` gives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pona_model.metrics.images import load_rgb, resize_rgb
from poseformats.annotations import identity_of, read_annotations
from poseformats.keypoints import FLIP_PERMUTATION, MISSING, scale_keypoints


@dataclass
class Crops:
    """Annotated crops: uint8 (N, H, W, 3) images, int (N, 18, 2) keypoints in their frame, names."""

    images: np.ndarray
    keypoints: np.ndarray
    names: list[str]

    def subset(self, keep: np.ndarray) -> Crops:
        return Crops(self.images[keep], self.keypoints[keep], [self.names[i] for i in np.flatnonzero(keep)])

    def resized(self, size: tuple[int, int]) -> Crops:
        """The crops at ``size`` as the generator's PairDataset makes them (PIL bicubic, scaled keypoints)."""
        h, w = self.images.shape[1:3]
        images = np.stack([resize_rgb(im, size) for im in self.images])
        return Crops(images, np.asarray(scale_keypoints(self.keypoints, (h, w), size)), self.names)


def load_crops(images_dir: str | os.PathLike, annotations: str | os.PathLike) -> Crops:
    """Every annotated image of ``images_dir`` (sorted by name); all must share one size."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"image folder {images_dir} does not exist; point data= at a Market-layout root "
                                "(SynthMarket: `python -m synthmarket`, its auxiliary identities: "
                                "`python -m synthmarket.auxiliary`)")
    keypoints = read_annotations(annotations)
    names = sorted(keypoints)
    if not names:
        raise ValueError(f"{annotations} holds no annotated image")
    images = [load_rgb(images_dir / n) for n in names]
    sizes = {im.shape for im in images}
    if len(sizes) != 1:
        raise ValueError(f"images in {images_dir} have several sizes {sorted(sizes)}; the estimator trains on one")
    return Crops(np.stack(images), np.stack([keypoints[n] for n in names]).astype(np.int64), names)


def split_identities(names: list[str], held_out: int, seed: int) -> np.ndarray:
    """Boolean mask of the images whose identity is among ``held_out`` identities drawn with ``seed``."""
    ids = sorted({identity_of(n) for n in names})
    if not 0 <= held_out < len(ids):
        raise ValueError(f"held_out_ids={held_out} must be in [0, {len(ids)}) (the data has {len(ids)} identities)")
    chosen = set(np.asarray(ids)[np.random.default_rng(seed).permutation(len(ids))[:held_out]].tolist())
    return np.array([identity_of(n) in chosen for n in names])


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths; shifts in pixels of the 64 x 32 output."""

    flip: float = 0.5
    affine: float = 0.8  # probability of a shift / scale
    shift: float = 2.5
    scale: float = 0.1  # scale in [1 - scale, 1 + scale]
    aspect: float = 0.05
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.4
    channel_gain: float = 0.1
    blur: float = 0.3  # probability of a Gaussian blur with sigma in blur_sigma
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    noise: float = 0.3  # probability of Gaussian noise with std up to noise_std (images in [0, 1])
    noise_std: float = 0.04


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur (separable, 5 taps, border replicated)."""
    b, c, h, w = x.shape
    taps = torch.arange(-2, 3, dtype=x.dtype)
    k = torch.exp(-(taps[None] ** 2) / (2 * sigma[:, None] ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, 5)
    y = F.pad(x.reshape(1, b * c, h, w), (2, 2, 2, 2), mode="replicate")
    y = F.conv2d(y, k[:, None, :, None], groups=b * c)
    y = F.conv2d(y, k[:, None, None, :], groups=b * c)
    return y.view(b, c, h, w)


def augment(images: torch.Tensor, keypoints: torch.Tensor, out_size: tuple[int, int], aug: Augment,
            g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One augmented batch at ``out_size``.

    ``images`` uint8 (B, H, W, 3) at the stored size, ``keypoints`` int (B, 18, 2) annotations in that
    frame. Geometry is applied at the stored size, then the batch is shrunk with antialiased bicubic
    (PIL's resize) and quantised to 8 bits, as the real inputs are. Returns images (B, 3, h, w) in
    [-1, 1], continuous pixel-centre keypoints (B, 18, 2) at ``out_size`` and their visibility (B, 18)
    (annotated and inside the crop)."""
    b, h, w, _ = images.shape
    oh, ow = out_size
    x = images.permute(0, 3, 1, 2).float() / 255
    vis = (keypoints != MISSING).all(-1)
    kp = keypoints.double()
    flip = torch.rand(b, generator=g) < aug.flip
    perm = list(FLIP_PERMUTATION)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    kp = torch.stack([kp[..., 0], torch.where(flip[:, None], w - 1 - kp[..., 1], kp[..., 1])], -1)
    kp = torch.where(flip[:, None, None], kp[:, perm], kp)
    vis = torch.where(flip[:, None], vis[:, perm], vis)
    # Shift and scale about the centre: output normalised coordinate = s * input + t.
    on = torch.rand(b, generator=g) < aug.affine
    s = torch.exp(_uniform(b, np.log(1 - aug.scale), np.log(1 + aug.scale), g))
    a = torch.exp(_uniform(b, -aug.aspect, aug.aspect, g))
    sy, sx = torch.where(on, s * a, 1.0), torch.where(on, s / a, 1.0)
    ty = torch.where(on, _uniform(b, -aug.shift, aug.shift, g) * 2 / oh, 0.0)
    tx = torch.where(on, _uniform(b, -aug.shift, aug.shift, g) * 2 / ow, 0.0)
    zero = torch.zeros(b)
    theta = torch.stack([torch.stack([1 / sx, zero, -tx / sx], -1), torch.stack([zero, 1 / sy, -ty / sy], -1)], 1)
    grid = F.affine_grid(theta, [b, 3, h, w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    ny, nx = (2 * kp[..., 0] + 1) / h - 1, (2 * kp[..., 1] + 1) / w - 1
    ny, nx = sy[:, None] * ny + ty[:, None], sx[:, None] * nx + tx[:, None]
    kp = torch.stack([((ny + 1) * oh - 1) / 2, ((nx + 1) * ow - 1) / 2], -1)
    inside = (kp[..., 0] > -0.5) & (kp[..., 0] < oh - 0.5) & (kp[..., 1] > -0.5) & (kp[..., 1] < ow - 0.5)
    vis = vis & inside
    if (h, w) != (oh, ow):
        x = F.interpolate(x, size=(oh, ow), mode="bicubic", antialias=True, align_corners=False)
    # Colour: brightness, contrast, saturation, a colour cast.
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * _uniform(b, 1 - aug.saturation, 1 + aug.saturation, g)[:, None, None, None]
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * _uniform(b, 1 - aug.contrast, 1 + aug.contrast, g)[:, None, None, None]
    gain = _uniform(b, 1 - aug.brightness, 1 + aug.brightness, g)[:, None, None, None] \
        * (1 + aug.channel_gain * (2 * torch.rand(b, 3, 1, 1, generator=g) - 1))
    x = (x * gain).clamp(0, 1)
    blurred = torch.rand(b, generator=g) < aug.blur
    x = torch.where(blurred[:, None, None, None], _blur(x, _uniform(b, *aug.blur_sigma, g)), x)
    noisy = torch.rand(b, generator=g) < aug.noise
    std = torch.where(noisy, _uniform(b, 0, aug.noise_std, g), 0.0)
    x = x + std[:, None, None, None] * torch.randn(x.shape, generator=g)
    x = torch.round(x.clamp(0, 1) * 255) / 127.5 - 1
    return x, kp.float(), vis

