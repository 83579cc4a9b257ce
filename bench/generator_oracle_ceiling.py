"""What would a perfect pose transfer score on the generator's test metrics? The oracle as a generator.

A pose-transfer generator sees the condition image and the target pose, nothing about the target's
camera. SynthMarket's renderer can play that perfect generator (``synthmarket.oracle``, the oracle
method of the re-ID experiment): the condition's person, in the target's exact shot, under the
condition's camera. Scoring its renders with the learning curve's metrics, on the same first
``--pairs`` test pairs and at the same size (``bench/generator_learning_curve.py``), says how much of
each target a generator can reach at all:

- ``pose_gain_l1`` as ``pona_model.metrics.pose_control`` defines it: L1 to the real target of the
  render in another pair's target shot (the same seeded derangement) minus that of the render in the
  true shot;
- SSIM, mask-SSIM and limb_region against the real target, beside the identity baseline.

Rows: ``oracle`` (the condition's camera: a generator's ceiling) and ``oracle-target-camera`` (the
target's own camera: the render is the real target up to JPEG, the metric's own ceiling).

    python bench/generator_oracle_ceiling.py --data data/synthmarket --out bench/results/generator_oracle_ceiling.csv
"""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import write_csv
from generator_learning_curve import TestPairs
from PIL import Image
from tqdm import tqdm

from pona_model.metrics.pose_control import derangement
from synthmarket.camera import jpeg_bytes
from synthmarket.oracle import Oracle


def at_size(jpeg: bytes, size: tuple[int, int]) -> np.ndarray:
    """A rendered file as the test pairs are read: decoded, resized bicubically to (H, W), uint8 RGB."""
    with Image.open(io.BytesIO(jpeg)) as image:
        image = image.convert("RGB")
        if image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        return np.asarray(image, dtype=np.uint8)


def l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image mean |a - b| on the [0, 1] scale, as the pose control measures it."""
    return np.abs(a.astype(np.float64) - b.astype(np.float64)).reshape(len(a), -1).mean(1) / 255.0


def renders(oracle: Oracle, pairs: TestPairs, targets: list[str], own_camera: bool, size: tuple[int, int]
            ) -> np.ndarray:
    """Pair i's condition person in the shot of ``targets[i]``, under the condition's camera or, with
    ``own_camera``, under that target's."""
    out = []
    for condition, target in tqdm(list(zip(pairs.dataset.sources, targets)), desc="rendering", leave=False):
        camera = oracle.job(target).camera if own_camera else None
        image = oracle.render(target, condition, camera=camera).image
        seen_by = camera if own_camera else oracle.job(condition).camera
        out.append(at_size(jpeg_bytes(image, oracle.cameras[seen_by - 1].jpeg_quality), size))
    return np.stack(out)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/synthmarket", help="a finished SynthMarket root")
    parser.add_argument("--pairs", type=int, default=200, help="first N test pairs, as the learning curve")
    parser.add_argument("--size", default="64,32", help="H,W: the generator's size")
    parser.add_argument("--seed", type=int, default=0, help="the pose control's derangement seed")
    parser.add_argument("--out", default="bench/results/generator_oracle_ceiling.csv")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split(","))
    assert len(size) == 2
    pairs = TestPairs(Path(args.data), size, args.pairs, estimator=None)
    oracle = Oracle(args.data, splits=("gallery",))
    targets = list(pairs.dataset.targets)
    other = derangement(len(targets), args.seed)
    shuffled = [targets[j] for j in other]
    rows: list[dict[str, Any]] = []
    for name, own in (("oracle", False), ("oracle-target-camera", True)):
        true_shot = renders(oracle, pairs, targets, own, size)
        other_shot = renders(oracle, pairs, shuffled, own, size)
        gain = l1(other_shot, pairs.target) - l1(true_shot, pairs.target)
        scores = pairs.image_scores(true_shot)
        rows.append({"generator": name, "pairs": len(targets), "pose_gain_l1": round(float(gain.mean()), 5),
                     "l1_true_pose": round(float(l1(true_shot, pairs.target).mean()), 5),
                     "ssim": round(scores["ssim"], 4), "ssim_identity": round(pairs.baseline["ssim"], 4),
                     "mask_ssim": round(scores["mask_ssim"], 4),
                     "mask_ssim_identity": round(pairs.baseline["mask_ssim"], 4),
                     "limb_region": round(scores["limb_region"], 4)})
        logging.info("%s", rows[-1])
    write_csv(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
