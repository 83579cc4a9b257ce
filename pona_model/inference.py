"""Generation from a trained checkpoint: load once onto a device, then generate batches.

This is the API the augmentation library and the pipeline call; ``python -m pona_model.generate``
is a thin command over it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pona_model.checkpoint_tags import GENERATOR_FORMAT, GENERATOR_RELEASE_FORMAT
from pona_model.generator import GeneratorConfig, generator_pose_pair
from pona_model.models import build_generator
from pona_model.release_spec import resolve_release
from pona_model.sample_grid import to_uint8
from poseformats.keypoints import scale_keypoints
from runtime.checkpoint import file_sha256, load_checkpoint
from runtime.config import build
from runtime.device import autocast, precision_name, resolve_device, resolve_precision
from runtime.errors import CheckpointError, ConfigError


def weights_label(iteration: int, averaged_iterations: Sequence[int] = ()) -> str:
    """How provenance and captions name a generator's weights: ``iteration N`` for one training state,
    the snapshot range for a release that averaged snapshots (``LoadedGenerator.weights``)."""
    if not averaged_iterations:
        return f"iteration {iteration}"
    its = averaged_iterations
    return f"average of iterations {min(its)}-{max(its)} ({len(its)} snapshots)"


@dataclass
class LoadedGenerator:
    """A generator (PoNA or PATN) in eval mode on its device, with where it came from (for provenance
    manifests)."""

    generator: torch.nn.Module
    config: GeneratorConfig
    device: torch.device
    checkpoint: Path
    sha256: str
    iteration: int
    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    source: str = "path"  # "released:<name>" when loaded through a verified release
    averaged_iterations: tuple[int, ...] = ()  # the snapshots a release averaged (pona_model.release)

    @property
    def weights(self) -> str:
        """Which weights these are, for provenance and captions: a release that averages snapshots
        (``--average-snapshots``) keeps its training's last iteration in ``iteration``, which is not
        where its weights come from."""
        return weights_label(self.iteration, self.averaged_iterations)

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.config.image_size)

    @torch.inference_mode()
    def generate(self, condition: torch.Tensor, kp_condition: torch.Tensor, kp_target: torch.Tensor) -> torch.Tensor:
        """condition (B,3,H,W) in [-1,1] at the generator's size, keypoints (B,18,2) (y, x) in that frame
        -> generated (B,3,H,W) in [-1,1], on the generator's device."""
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        cond = condition.to(self.device, torch.float32).contiguous(memory_format=fmt)
        pair = generator_pose_pair(self.config, kp_condition.to(self.device), kp_target.to(self.device))
        with autocast(self.device, self.dtype):
            return self.generator(cond, pair.contiguous(memory_format=fmt)).float()

    def generate_images(self, images: list[np.ndarray], kp_condition: list[np.ndarray],
                        kp_target: list[np.ndarray], target_sizes: list[tuple[int, int]] | None = None
                        ) -> list[np.ndarray]:
        """uint8 H x W x 3 condition images of any size with keypoints in their own frames; target
        keypoints are in the frame of ``target_sizes[i]`` (default: the condition's size). Inputs are
        resized (bicubic) to the generator's size and outputs back to the target size."""
        h, w = self.image_size
        n = len(images)
        srcs = [tuple(np.asarray(img).shape[:2]) for img in images]
        tgts = [tuple(target_sizes[i]) if target_sizes else srcs[i] for i in range(n)]
        conds = torch.empty(n, 3, h, w)
        for size, rows in _by_size(srcs).items():  # one resize per stored size, not per image
            t = torch.from_numpy(np.stack([np.asarray(images[i]) for i in rows])).permute(0, 3, 1, 2)
            t = t.float().div(127.5).sub(1)
            if size != (h, w):
                t = F.interpolate(t, size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)
            conds[rows] = t
        kcs = torch.stack([torch.as_tensor(scale_keypoints(np.asarray(kc), srcs[i], (h, w)))
                           for i, kc in enumerate(kp_condition)])
        kts = torch.stack([torch.as_tensor(scale_keypoints(np.asarray(kt), tgts[i], (h, w)))
                           for i, kt in enumerate(kp_target)])
        out = self.generate(conds, kcs, kts).cpu()
        results: list[np.ndarray] = [np.empty(0, dtype=np.uint8)] * n
        for size, rows in _by_size(tgts).items():
            o = out[rows]
            if size != (h, w):
                o = F.interpolate(o, size=size, mode="bicubic", align_corners=False)
            pixels = to_uint8(o)
            for j, i in enumerate(rows):
                results[i] = pixels[j]
        return results


def _by_size(sizes: list[tuple[int, int]]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for i, size in enumerate(sizes):
        groups.setdefault((int(size[0]), int(size[1])), []).append(i)
    return groups


def fp32_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with every floating tensor in fp32: a release stores weights and batch-norm running
    statistics in fp16 to stay small, but the model computes (and autocasts) from fp32 weights."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_generator(path: str | os.PathLike, device: str | torch.device = "auto", precision: str = "auto",
                   channels_last: bool = True, *, arch: str = "pona",
                   releases_root: str | os.PathLike | None = None) -> LoadedGenerator:
    """Load the generator of a training checkpoint or of a release (``weights_only=True``) in eval mode;
    ``precision`` (auto|fp32|bf16) is the autocast dtype of its forward passes.

    ``path`` may also be ``released:<name>`` (or ``released``, the default release of ``arch``): the
    release under ``releases_root`` (default: ``runtime.releases.releases_root``) is verified against
    its sha256 before it is read; a missing or altered one raises ReleaseError in one line."""
    release = resolve_release(path, arch, releases_root)
    p = release.path if release is not None else Path(path)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    dtype = resolve_precision(precision, dev)
    state = load_checkpoint(p, (GENERATOR_FORMAT, GENERATOR_RELEASE_FORMAT), map_location="cpu")
    try:
        config = build(GeneratorConfig, state["config"]["generator"], prefix="generator.")
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{p}: its generator config cannot be read ({exc})") from exc
    generator = build_generator(config)
    try:
        generator.load_state_dict(fp32_weights(state["generator"]))
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{p}: generator weights do not match its own config "
                              f"({str(exc).splitlines()[0]})") from exc
    generator.to(dev).eval()
    if channels_last:
        generator.to(memory_format=torch.channels_last)
    sha256 = release.sha256 if release is not None else file_sha256(p)
    source = f"released:{release.name}" if release is not None else "path"
    return LoadedGenerator(generator, config, dev, p, sha256, int(state.get("iteration", 0)), dtype,
                           channels_last, source, tuple(int(i) for i in state.get("averaged_iterations", ())))
