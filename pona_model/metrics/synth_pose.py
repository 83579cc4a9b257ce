"""A small keypoint estimator for SynthMarket's 64 x 32 crops, so PCKh can tell generators apart there.

The photo estimator (``poseformats.estimate.PoseEstimator``, BlazePose) finds a person in few 64 x 32
SynthMarket images: its ceiling on the real targets is 0.570, below what a good generator would need
to show. This network is trained on the auxiliary identities' exact keypoints
(``python -m pona_model.metrics.train_synth_pose``; never a test identity) and released as data in
``releases/pose-synth/`` (docs/model-card-pose-synth.md). It has the photo estimator's interface:
``estimate(uint8 H x W x 3) -> (18, 2) int32 (y, x)``, MISSING (-1) where a joint is not visible.

Images of another size are resized to 64 x 32 the way the generator's PairDataset does (PIL bicubic)
and the keypoints are mapped back to the image's frame. Coordinates are continuous in the pixel-centre
frame inside (pixel i has centre i) and rounded half up on the way out, as
``poseformats.keypoints.scale_keypoints`` rounds annotations.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from poseformats.keypoints import FLIP_PERMUTATION, MISSING, N_JOINTS

RELEASE_NAME = "pose-synth"
INPUT_SIZE = (64, 32)  # (H, W): the generator's size in the synth preset
WEIGHTS_FORMAT = "pona-synth-pose/1"
TRAIN_COMMAND = "python -m pona_model.metrics.train_synth_pose --data data/synthmarket-aux --out releases/pose-synth"


@dataclass(frozen=True)
class NetConfig:
    """The architecture: a three-level encoder-decoder with heatmaps at the input's size; channels at
    64 x 32, 32 x 16 and 16 x 8."""

    c1: int = 16
    c2: int = 48
    c3: int = 96


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, c: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(_cbr(c, c, 1, dilation),
                                  nn.Conv2d(c, c, 3, 1, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class SynthPoseNet(nn.Module):
    """Input (B, 3, 64, 32) in [-1, 1]; output heatmap logits (B, 18, 64, 32) and visibility logits
    (B, 18). The 16 x 8 level sees the whole crop, which left / right (front or back view) needs."""

    def __init__(self, cfg: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.c1, cfg.c2, cfg.c3
        self.enc1 = nn.Sequential(_cbr(3, c1), _cbr(c1, c1))
        self.enc2 = nn.Sequential(_cbr(c1, c2, 2), _Residual(c2))
        self.enc3 = nn.Sequential(_cbr(c2, c3, 2), _Residual(c3))
        # A global-context vector added everywhere: which way the person faces decides which leg is the
        # left one, and the ankles are too far from the face for the convolutions alone.
        self.context = nn.Sequential(nn.Linear(c3, c3), nn.ReLU(inplace=True), nn.Linear(c3, c3))
        self.enc3b = _Residual(c3, 2)
        self.up2, self.dec2 = nn.Conv2d(c3, c2, 1), _Residual(c2)
        self.up1, self.dec1 = nn.Conv2d(c2, c1, 1), _cbr(c1, c1)
        self.heat = nn.Conv2d(c1, N_JOINTS, 1)
        self.visibility = nn.Linear(2 * c3, N_JOINTS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.enc1(x)
        b = self.enc2(a)
        c = self.enc3(b)
        c = self.enc3b(c + self.context(c.mean((2, 3)))[:, :, None, None])
        vis = self.visibility(torch.cat([c.mean((2, 3)), c.amax((2, 3))], 1))
        b = self.dec2(b + F.interpolate(self.up2(c), scale_factor=2.0, mode="nearest"))
        a = self.dec1(a + F.interpolate(self.up1(b), scale_factor=2.0, mode="nearest"))
        return self.heat(a), vis


def decode(heat: torch.Tensor, window: int = 1) -> torch.Tensor:
    """Continuous (y, x) at the input size, pixel-centre frame, (B, 18, 2) float32: the heatmap's
    argmax refined by the centre of mass of the softmax in a (2 window + 1)^2 neighbourhood (the
    refinement never moves the rounded pixel at 64 x 32; it counts when keypoints are mapped back to
    a larger image)."""
    b, j, h, w = heat.shape
    prob = heat.flatten(2).softmax(-1).view(b, j, h, w)
    peak = prob.flatten(2).argmax(-1)
    py, px = peak // w, peak % w
    offsets = torch.arange(-window, window + 1, device=heat.device)
    ys = (py[..., None] + offsets).clamp(0, h - 1)  # (B, J, K)
    xs = (px[..., None] + offsets).clamp(0, w - 1)
    flat = prob.flatten(0, 1)
    rows = ys.flatten(0, 1)[:, :, None].expand(-1, -1, len(offsets))
    cols = xs.flatten(0, 1)[:, None, :].expand(-1, len(offsets), -1)
    patch = flat[torch.arange(b * j, device=heat.device)[:, None, None], rows, cols]  # (BJ, K, K)
    mass = patch.sum((1, 2)).clamp_min(1e-12)
    cy = (patch * rows).sum((1, 2)) / mass
    cx = (patch * cols).sum((1, 2)) / mass
    return torch.stack([cy, cx], -1).view(b, j, 2).float()


def to_pixels(coords: np.ndarray, present: np.ndarray, size: tuple[int, int],
              from_size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """(18, 2) int32 keypoints in an image of ``size`` from continuous pixel-centre ``coords`` at
    ``from_size``: scaled pixel edges, rounded half up; MISSING where absent or outside the image."""
    scale = np.array([size[0] / from_size[0], size[1] / from_size[1]])
    moved = np.floor((np.asarray(coords, dtype=np.float64) + 0.5) * scale).astype(np.int64)
    inside = present & (moved >= 0).all(1) & (moved[:, 0] < size[0]) & (moved[:, 1] < size[1])
    out = np.full((N_JOINTS, 2), MISSING, dtype=np.int32)
    out[inside] = moved[inside]
    return out


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, 64, 32, 3) -> float (B, 3, 64, 32) in [-1, 1], the generator's normalisation."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


class SynthPoseEstimator:
    """OpenPose-18 keypoints of a SynthMarket-like crop; ``provenance`` goes into metric results.

    ``flip_test`` averages the heatmaps of the image and of its mirror (joints swapped back), which is
    steadier on blurry generated images at twice the cost."""

    def __init__(self, net: SynthPoseNet, *, visibility: float = 0.5, flip_test: bool = True,
                 provenance: dict[str, Any] | None = None) -> None:
        if not 0.0 <= visibility <= 1.0:
            raise ValueError(f"visibility must be in [0, 1], got {visibility}")
        self.net = net.eval()
        self.visibility, self.flip_test = visibility, flip_test
        self.provenance = {"estimator": "pona_model.metrics.synth_pose.SynthPoseEstimator (a CNN trained on "
                                        "SynthMarket's auxiliary identities, 64 x 32 input)",
                           "visibility": visibility, "flip_test": flip_test, **(provenance or {})}

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuous (B, 18, 2) pixel-centre coordinates and (B, 18) visibility probabilities of
        uint8 (B, 64, 32, 3) images."""
        x = to_input(images)
        heat, vis = self.net(x)
        if self.flip_test:
            heat_f, vis_f = self.net(x.flip(-1))
            perm = list(FLIP_PERMUTATION)
            heat = (heat + heat_f.flip(-1)[:, perm]) / 2
            vis = (vis + vis_f[:, perm]) / 2
        coords = decode(heat)
        return coords.numpy(), torch.sigmoid(vis).numpy()

    def estimate_batch(self, images: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
        """``estimate`` for many images at once (one forward pass per 256)."""
        from pona_model.metrics.images import resize_rgb
        from poseformats.estimate import as_rgb_uint8

        checked = [as_rgb_uint8(im) for im in images]
        if not checked:
            return []
        small = np.stack([resize_rgb(im, INPUT_SIZE) for im in checked])
        out: list[np.ndarray] = []
        for start in range(0, len(small), 256):
            coords, prob = self.predict(small[start:start + 256])
            for i in range(len(coords)):
                size = checked[start + i].shape[:2]
                out.append(to_pixels(coords[i], prob[i] >= self.visibility, size))
        return out

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """(18, 2) int32 (y, x) in ``image``'s pixel frame, MISSING (-1) where not visible."""
        return self.estimate_batch([image])[0]

    def close(self) -> None:
        """Nothing to release; here so callers can treat both estimators alike."""


# ----------------------------------------------------------------------------- weights
# A small file of its own kind rather than torch.save's: torch.save writes a random serialization id,
# so the same weights would get another sha256 at every retraining, and a reader needs no pickle.
# Layout: MAGIC, an 8-byte little-endian header length, a JSON header (format, architecture, and each
# tensor's name, dtype, shape and byte offset), then the tensors' little-endian bytes.

MAGIC = b"PONAPOSE"
DTYPES = ("float16", "float32", "int64")


def save_weights(net: SynthPoseNet, path: str | os.PathLike, *, half: bool = True) -> None:
    """The state dict (floating tensors as fp16 when ``half``) with the architecture: the same weights
    always give the same bytes."""
    from runtime.atomic import atomic_write_bytes

    header: dict[str, Any] = {"format": WEIGHTS_FORMAT, "net": asdict(net.cfg), "tensors": []}
    blobs, offset = [], 0
    for name, value in net.state_dict().items():
        t = value.detach().cpu().contiguous()
        t = t.half() if half and t.is_floating_point() else t
        array = t.numpy()
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header["tensors"].append({"name": name, "dtype": str(array.dtype), "shape": list(array.shape),
                                  "offset": offset, "bytes": len(data)})
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, sort_keys=True).encode()
    atomic_write_bytes(path, MAGIC + len(head).to_bytes(8, "little") + head + b"".join(blobs))


def load_weights(path: str | os.PathLike) -> SynthPoseNet:
    """The network of a file written by ``save_weights``, in fp32 and eval mode."""
    fix = f"retrain it with `{TRAIN_COMMAND}`"
    raw = Path(path).read_bytes()
    try:
        if not raw.startswith(MAGIC):
            raise ValueError("no header")
        size = int.from_bytes(raw[len(MAGIC):len(MAGIC) + 8], "little")
        start = len(MAGIC) + 8 + size
        header = json.loads(raw[len(MAGIC) + 8:start])
        if header.get("format") != WEIGHTS_FORMAT:
            raise ValueError(f"format {header.get('format')!r}")
        state = {}
        for t in header["tensors"]:
            if t["dtype"] not in DTYPES:
                raise ValueError(f"dtype {t['dtype']!r}")
            chunk = raw[start + t["offset"]:start + t["offset"] + t["bytes"]]
            array = np.frombuffer(chunk, dtype=np.dtype(t["dtype"]).newbyteorder("<")).reshape(t["shape"])
            tensor = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))
            state[t["name"]] = tensor.float() if tensor.is_floating_point() else tensor
        net = SynthPoseNet(NetConfig(**header["net"]))
        net.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # any malformed file: one line naming it
        reason = " ".join(str(exc).split())[:200]
        raise ValueError(f"{path} is not a {WEIGHTS_FORMAT} weights file ({reason}); {fix}") from exc
    return net.eval()


def load_synth_estimator(root: str | os.PathLike | None = None, **kwargs: Any) -> SynthPoseEstimator:
    """The released estimator, after ``runtime.releases.verify_release`` checked its sha256."""
    from runtime.releases import verify_release

    release = verify_release(RELEASE_NAME, root)
    facts = {k: release.manifest[k] for k in ("ceiling", "trained_on") if k in release.manifest}
    return SynthPoseEstimator(load_weights(release.path), provenance={  # no absolute path: results move
        "release": RELEASE_NAME, "file": release.path.name, "sha256": release.sha256, **facts}, **kwargs)
