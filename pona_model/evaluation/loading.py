"""Loading a pair's generated, target and condition images and the target keypoints at the compared size,
from image files, PATN strips or (for a baseline) the condition image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pona_model.evaluation.pairs import ScoredPair
from pona_model.evaluation.settings import EvaluationError
from pona_model.metrics.images import (
    VIS_CONDITION,
    VIS_GENERATED,
    VIS_TARGET,
    image_size,
    load_rgb,
    resize_rgb,
    vis_panel,
)
from poseformats.keypoints import scale_keypoints


@dataclass
class PairImages:
    """Loads a pair's generated, target and condition images and target keypoints at the compared size."""

    fmt: str
    images: Path | None
    annotations: dict[str, np.ndarray]
    size: tuple[int, int] | None = None
    _strip_cache: dict[str, np.ndarray] = field(default_factory=dict)

    def _strip(self, pair: ScoredPair) -> np.ndarray:
        if pair.name not in self._strip_cache:
            self._strip_cache.clear()  # one strip at a time: its panels are read together
            self._strip_cache[pair.name] = load_rgb(pair.strip)
        return self._strip_cache[pair.name]

    def _real(self, name: str, role: str) -> np.ndarray:
        if self.images is None:
            raise EvaluationError(f"the {role} image {name!r} is needed: pass images=DIR (the real images)")
        return load_rgb(self.images / name)

    def generated_raw(self, pair: ScoredPair) -> np.ndarray:
        if self.fmt == "images":
            return load_rgb(pair.file)
        if self.fmt == "vis":
            return vis_panel(self._strip(pair), VIS_GENERATED)
        return self._real(pair.source, "condition")  # baseline=identity

    def _at_size(self, image: np.ndarray) -> np.ndarray:
        assert self.size is not None
        return resize_rgb(image, self.size)

    def generated(self, pair: ScoredPair) -> np.ndarray:
        return self._at_size(self.generated_raw(pair))

    def target(self, pair: ScoredPair) -> np.ndarray:
        if self.fmt == "vis":
            return self._at_size(vis_panel(self._strip(pair), VIS_TARGET))
        return self._at_size(self._real(pair.target, "target"))

    def condition(self, pair: ScoredPair) -> np.ndarray | None:
        if self.fmt == "vis":
            return self._at_size(vis_panel(self._strip(pair), VIS_CONDITION))
        if pair.source is None or self.images is None or not (self.images / pair.source).is_file():
            return None
        return self._at_size(load_rgb(self.images / pair.source))

    def _keypoints(self, pair: ScoredPair, name: str, panel: int, role: str) -> np.ndarray:
        kp = self.annotations[name]
        stored = None
        if self.images is not None and (self.images / name).is_file():
            stored = image_size(self.images / name)
        elif self.fmt == "vis":
            stored = vis_panel(self._strip(pair), panel).shape[:2]
        if stored is None:
            raise EvaluationError(f"{role} image {name!r} not found in {self.images}")
        assert self.size is not None
        return scale_keypoints(np.asarray(kp, dtype=np.int64), tuple(stored), self.size)

    def target_keypoints(self, pair: ScoredPair) -> np.ndarray:
        """Annotation keypoints of the target, moved from the stored target image's frame (the panel's
        frame for strips without the real image) to the compared size."""
        return self._keypoints(pair, pair.target, VIS_TARGET, "target")

    def condition_keypoints(self, pair: ScoredPair) -> np.ndarray | None:
        """The same for the condition image; None when it is unknown or has no annotation."""
        if pair.source is None or pair.source not in self.annotations:
            return None
        if self.fmt != "vis" and (self.images is None or not (self.images / pair.source).is_file()):
            return None
        return self._keypoints(pair, pair.source, VIS_CONDITION, "condition")

