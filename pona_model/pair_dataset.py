"""Condition/target image pairs with their keypoints, for training and testing the generator.

Pose maps are not made here: the trainer builds them for the whole batch on its device with
``poseformats.keypoints.pose_maps``, which is cheaper than shipping 36 x H x W floats per item through
workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from poseformats.annotations import read_annotations, read_pairs
from poseformats.keypoints import scale_keypoints


class PairDataset(Dataset):
    """Item i is pair i: {"condition", "target": (3, H, W) float32 in [-1, 1], "kp_condition",
    "kp_target": (18, 2) int64 (y, x) in the returned image's frame, "condition_name", "target_name"}.

    Images whose stored size differs from ``image_size`` = (H, W) are resized bicubically, and their
    keypoints scaled with them.
    """

    def __init__(
        self,
        images_dir: str | os.PathLike,
        annotations: Mapping[str, np.ndarray] | str | os.PathLike,
        pairs: pd.DataFrame | str | os.PathLike,
        image_size: tuple[int, int],
    ) -> None:
        self.images_dir = Path(images_dir)
        if not self.images_dir.is_dir():
            raise FileNotFoundError(
                f"image directory {self.images_dir} does not exist; it is dataroot/train or dataroot/test, "
                "the folder holding the images the annotation file names"
            )
        if not isinstance(annotations, Mapping):
            annotations = read_annotations(annotations)
        if not isinstance(pairs, pd.DataFrame):
            pairs = read_pairs(pairs, known_names=annotations)
        missing = {"from", "to"} - set(pairs.columns)
        if missing:
            raise ValueError(f"pairs need the columns 'from' and 'to'; missing {sorted(missing)}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.sources: list[str] = [str(n) for n in pairs["from"]]
        self.targets: list[str] = [str(n) for n in pairs["to"]]
        unknown = sorted({n for n in self.sources + self.targets if n not in annotations})
        if unknown:
            raise ValueError(
                f"{len(unknown)} image(s) named in the pairs have no annotation, e.g. {unknown[:5]}; "
                "rebuild the pairs from the annotation file in use, or annotate those images"
            )
        used = set(self.sources) | set(self.targets)
        self.keypoints = {n: np.asarray(annotations[n], dtype=np.int64) for n in used}

    def __len__(self) -> int:
        return len(self.sources)

    def _open(self, name: str, decode: bool) -> Image.Image:
        path = self.images_dir / name
        try:
            with Image.open(path) as stored:
                return stored.convert("RGB") if decode else stored
        except FileNotFoundError:
            raise FileNotFoundError(f"image {path} named in the pairs does not exist") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise OSError(f"image {path} cannot be decoded ({exc}); replace or re-extract the file") from exc

    def _scaled_keypoints(self, name: str, stored: Image.Image) -> torch.Tensor:
        kp = self.keypoints[name]
        if stored.size != (self.image_size[1], self.image_size[0]):
            kp = scale_keypoints(kp, (stored.height, stored.width), self.image_size)
        return torch.from_numpy(kp.copy())

    def _load(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        image = self._open(name, decode=True)
        kp = self._scaled_keypoints(name, image)
        height, width = self.image_size
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BICUBIC)
        tensor = TF.normalize(TF.to_tensor(image), [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
        return tensor, kp

    def target_keypoints(self, index: int) -> torch.Tensor:
        """``self[index]["kp_target"]`` from the image header alone (no decoding): for callers that need
        every pair's target pose up front, such as ``metrics.pose_control``."""
        name = self.targets[index]
        return self._scaled_keypoints(name, self._open(name, decode=False))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        condition_name, target_name = self.sources[index], self.targets[index]
        condition, kp_condition = self._load(condition_name)
        target, kp_target = self._load(target_name)
        return {
            "condition": condition,
            "target": target,
            "kp_condition": kp_condition,
            "kp_target": kp_target,
            "condition_name": condition_name,
            "target_name": target_name,
        }
