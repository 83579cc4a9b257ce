"""The oracle filler: a SynthMarket training image re-rendered by the dataset's own renderer with the
condition image's person and camera, and the missing (target) image's exact shot.

This is the ceiling of pose transfer: a generator is given the condition image and the target pose
and knows nothing about the target image's camera. What comes from where:

- the target image (its ``job_shot``): everything ``sample_shot`` draws - view and yaw, pose and
  gait phase, framing (stature, position, misaligned box), occluder kind, the walk's light on the
  person and where in the scene the box sits - plus the camera's pitch, because the target
  keypoints are the projection at that pitch: with it the oracle's keypoints are exactly the
  target's annotation;
- the rest of the target job's random stream: the occluder's shape, fabric folds, the background
  crop's row and the sensor noise realisation (same number of draws under every camera);
- the condition image: the person (appearance and body) and the camera - scene, gain, colour cast,
  contrast, blur, noise level, light side and JPEG quality.

So re-rendering with the target's own camera gives back the target image bit for bit, and the
oracle differs from the real missing image in the camera alone.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from synthmarket.camera import Camera, jpeg_bytes
from synthmarket.config import SynthMarketConfig
from synthmarket.dataset import (
    GENERATOR_VERSION,
    Job,
    dataset_cameras,
    job_shot,
    make_plan,
    render_shot,
    walk_scene,
)
from synthmarket.render import Rendered

ORACLE_VERSION = 1  # bump whenever what the oracle takes from the target and from the condition changes
RENDERER = f"synthmarket-oracle-v{GENERATOR_VERSION}.{ORACLE_VERSION}"


class NoRendererError(ValueError):
    """The dataset root was not made by this version of the SynthMarket renderer."""


def oracle_camera(target: Camera, condition: Camera) -> Camera:
    """The condition's camera looking down at the target's pitch (the pitch shapes the target pose)."""
    return dataclasses.replace(condition, pitch=target.pitch)


def load_config(root: str | Path) -> SynthMarketConfig:
    """The settings ``root`` was rendered with, from its ``synthmarket.json``."""
    marker = Path(root) / "synthmarket.json"
    if not marker.is_file():
        raise NoRendererError(f"{marker} does not exist: the oracle re-renders SynthMarket images only; "
                              "use a SynthMarket root (dataset=synthmarket) or drop oracle from methods")
    info = json.loads(marker.read_text(encoding="utf-8"))
    if info.get("version") != GENERATOR_VERSION:
        raise NoRendererError(f"{marker} was made by SynthMarket version {info.get('version')}, this renderer is "
                              f"version {GENERATOR_VERSION}; render the dataset again")
    names = {f.name for f in dataclasses.fields(SynthMarketConfig)}
    return SynthMarketConfig(**{k: v for k, v in info.get("config", {}).items() if k in names})


# The splits whose images an oracle can address; their names are unique across them (train and test
# people differ, and distractors and junk are gallery-only).
SPLIT_FOLDERS = {"train": "bounding_box_train", "gallery": "bounding_box_test"}


class Oracle:
    """The renderer of one finished SynthMarket root, addressed by the image names of ``splits``:
    training images (the oracle filler's), or also the test gallery's (pictures of the test pairs)."""

    def __init__(self, root: str | Path, splits: tuple[str, ...] = ("train",)) -> None:
        unknown = sorted(set(splits) - set(SPLIT_FOLDERS))
        if unknown:
            raise ValueError(f"splits {unknown}: the oracle addresses {sorted(SPLIT_FOLDERS)} images only")
        self.config = load_config(root)
        self.content = self.config.content()
        plan = make_plan(self.config)
        self.appearances = plan.appearances
        self.cameras = dataset_cameras(self.config)
        self.splits = tuple(splits)
        self.jobs: dict[str, Job] = {j.name: j for j in plan.jobs if j.split in self.splits}

    def job(self, name: str) -> Job:
        if name not in self.jobs:
            folders = " or ".join(SPLIT_FOLDERS[s] for s in self.splits)
            raise KeyError(f"{name} is not an image of the SynthMarket dataset rendered with {self.content} "
                           f"that this oracle addresses; give names from its {folders}")
        return self.jobs[name]

    def render(self, target: str, condition: str, camera: int | None = None) -> Rendered:
        """``target``'s shot with ``condition``'s person, under ``condition``'s camera (or camera
        number ``camera``: the target's own gives the target image back)."""
        t, c = self.job(target), self.job(condition)
        shot, rng = job_shot(t, self.content)
        if shot is None:
            raise ValueError(f"{target} is a box of background; it has no shot to re-render")
        seen_by = c.camera if camera is None else camera
        cam = oracle_camera(self.cameras[t.camera - 1], self.cameras[seen_by - 1])
        # shared scenes: the background of the condition person's walk in that camera (a pose transfer keeps
        # the condition's background); with the target's person and camera, the target's own
        return render_shot(self.appearances[c.source], cam, shot, rng, self.content,
                           walk_scene(self.content, self.cameras, c.source, seen_by))

    def jpeg_quality(self, condition: str) -> int:
        return self.cameras[self.job(condition).camera - 1].jpeg_quality

    def jpeg(self, target: str, condition: str) -> bytes:
        """The oracle image's file: JPEG at the condition camera's quality, as the dataset writes its own."""
        image: np.ndarray = self.render(target, condition).image
        return jpeg_bytes(image, self.jpeg_quality(condition))

    def image(self, target: str, condition: str) -> np.ndarray:
        """The oracle image as a reader of its file sees it: ``jpeg`` decoded, uint8 (H, W, 3) RGB."""
        with Image.open(io.BytesIO(self.jpeg(target, condition))) as decoded:
            return np.asarray(decoded.convert("RGB"), dtype=np.uint8)
