"""A pose estimator's PCKh ceiling: the estimator on REAL images against their annotations, at the
size generated images are scored at. A generator's PCKh cannot exceed what the estimator reaches on
the real targets, so this number says whether PCKh can tell generators apart on a dataset.

    python -m pona_model.metrics.pose_ceiling data=data/synthmarket estimator=synth
    python -m pona_model.metrics.pose_ceiling data=data/synthmarket estimator=synth pairs=200
    python -m pona_model.metrics.pose_ceiling data=data/synthmarket estimator=photo pairs=200
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pona_model.metrics.pckh import PCKhAccumulator
from pona_model.metrics.synth_pose_data import Crops, load_crops
from poseformats.keypoints import MISSING
from runtime.config import entry_point, param, parse_config


def pckh_on_crops(estimator: Any, crops: Crops) -> dict[str, Any]:
    """PCKh of the estimator on ``crops`` against their keypoints (the annotation as ground truth)."""
    batch = getattr(estimator, "estimate_batch", None)
    preds = batch(list(crops.images)) if batch else [estimator.estimate(im) for im in crops.images]
    acc = PCKhAccumulator()
    for pred, gt in zip(preds, crops.keypoints):
        acc.add(pred, gt)
    return {**acc.result(), "no_joint_found": int(sum((np.asarray(p) == MISSING).all() for p in preds)),
            "n_images": len(crops.names)}


def real_targets(root: str | os.PathLike, size: tuple[int, int], pairs: int = 0, all_images: bool = False) -> Crops:
    """The real targets of a Market-layout root's test pairs at ``size`` (PIL bicubic, keypoints scaled,
    as the generator's PairDataset makes them): those of the first ``pairs`` pairs (0: all), a target
    counted once per pair as the generator evaluations count it; or, with ``all_images``, every
    annotated test image (SynthMarket's junk and distractor crops included)."""
    from poseformats.annotations import read_pairs

    root = Path(root)
    crops = load_crops(root / "bounding_box_test", root / "market-annotation-test.csv")
    if not all_images:
        targets = read_pairs(root / "market-pairs-test.csv", known_names=set(crops.names))["to"]
        targets = targets.head(pairs) if pairs else targets
        index = {n: i for i, n in enumerate(crops.names)}
        rows = np.array([index[str(n)] for n in targets])
        crops = Crops(crops.images[rows], crops.keypoints[rows], [crops.names[i] for i in rows])
    return crops.resized(size)


@dataclass
class CeilingConfig:
    data: str = param("data/synthmarket", "Market-layout root with bounding_box_test and market-annotation-test.csv")
    estimator: str = param("synth", "synth (the released pose-synth) or photo (mediapipe BlazePose)",
                           choices=("synth", "photo"))
    size: list[int] = param([64, 32], "[H, W] the images are scored at (the synth preset's generator size)")
    pairs: int = param(0, "score the targets of the first N test pairs (the generator evaluations score 200); "
                       "0 = all test pairs")
    all_images: bool = param(False, "score every annotated test image instead (junk and distractor crops included)")


def make_estimator(kind: str) -> Any:
    """The named estimator: the released synth one (sha256 verified) or the photo one."""
    if kind == "synth":
        from pona_model.metrics.synth_pose import load_synth_estimator

        return load_synth_estimator()
    if kind == "photo":
        from poseformats.estimate import PoseEstimator

        return PoseEstimator()
    raise ValueError(f"estimator={kind!r} is not synth or photo")


@entry_point("python -m pona_model.metrics.pose_ceiling")
def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(CeilingConfig, argv, prog="python -m pona_model.metrics.pose_ceiling", description=__doc__)
    crops = real_targets(cfg.data, (cfg.size[0], cfg.size[1]), cfg.pairs, cfg.all_images)
    estimator = make_estimator(cfg.estimator)
    start = time.perf_counter()
    result = pckh_on_crops(estimator, crops)
    scored = "every annotated test image" if cfg.all_images else f"targets of {cfg.pairs or 'all'} test pairs"
    result.update(estimator=cfg.estimator, data=cfg.data, size=cfg.size, scored=scored,
                  seconds=round(time.perf_counter() - start, 1))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
