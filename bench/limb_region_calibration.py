"""How to read the limb-region score (``pona_model.metrics.limbs``): its value, on SynthMarket's test
pairs, for images whose answer is known, beside generators.

Scored at the generator size (``--size``, default 64 x 32) on the first ``--pairs`` test pairs (0: all):

- ``target``: the real target (1 by construction); ``condition``: the identity baseline (0);
- ``oracle``: the condition's person in the target's exact shot under the condition's camera
  (``synthmarket.oracle``), the best a generator can do from the condition image;
- ``oracle, wrong pose``: the same person and camera in another pair's target shot (a seeded
  derangement, as the pose control's): a perfect image in a wrong pose;
- ``oracle, blurred``: the oracle under a Gaussian blur of 1.5 pixels: limbs in place, detail gone;
- ``grey``: a uniform mid-grey image;
- each ``--checkpoint`` (training checkpoint, release file or released:<name>) and each ``--snapshot``
  (a learning curve's generator weights, ``--snapshots``, in the first checkpoint's architecture).

Prints a markdown table of limb_region (with the gain match) and its plain-L1 reading; ``--out`` writes
it as CSV too.

    python bench/limb_region_calibration.py --checkpoint runs/pona-synth/checkpoint.pt
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from bench_common import write_csv
from scipy import ndimage
from torch.utils.data import DataLoader

from pona_model.inference import LoadedGenerator, fp32_weights, load_generator
from pona_model.metrics.images import load_rgb, resize_rgb
from pona_model.metrics.limbs import limb_margins, limb_region_score
from pona_model.metrics.pose_control import derangement
from pona_model.pair_dataset import PairDataset
from pona_model.sample_grid import to_uint8
from poseformats.annotations import read_annotations, read_pairs
from poseformats.keypoints import scale_keypoints
from runtime.device import torch_threads
from synthmarket.oracle import Oracle


def generated_by(model: LoadedGenerator, dataset: PairDataset, size: tuple[int, int]) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for b in DataLoader(dataset, batch_size=64):
            out.append(to_uint8(model.generate(b["condition"], b["kp_condition"], b["kp_target"])))
    return np.stack([resize_rgb(g, size) for g in np.concatenate(out)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/synthmarket", help="SynthMarket root")
    parser.add_argument("--pairs", type=int, default=0, help="first N test pairs; 0 = all")
    parser.add_argument("--size", type=int, nargs=2, default=[64, 32])
    parser.add_argument("--checkpoint", nargs="*", default=[], help="generators to score beside the references")
    parser.add_argument("--snapshot", nargs="*", default=[],
                        help="learning-curve generator weights (generator_NNNNNNN.pt), in the first --checkpoint's "
                             "architecture")
    parser.add_argument("--seed", type=int, default=0, help="the wrong-pose derangement's seed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="", help="CSV of the table")
    args = parser.parse_args(argv)
    root, size = Path(args.data), (args.size[0], args.size[1])
    annotations = read_annotations(root / "market-annotation-test.csv")
    pairs = read_pairs(root / "market-pairs-test.csv", known_names=annotations)
    pairs = pairs.head(args.pairs) if args.pairs else pairs
    sources, targets = list(pairs["from"]), list(pairs["to"])

    def image(name: str) -> np.ndarray:
        return resize_rgb(load_rgb(root / "bounding_box_test" / name), size)

    def pose(name: str) -> np.ndarray:
        stored = load_rgb(root / "bounding_box_test" / name).shape[:2]
        return scale_keypoints(np.asarray(annotations[name], dtype=np.int64), stored, size)

    start = time.perf_counter()
    condition, target = np.stack([image(n) for n in sources]), np.stack([image(n) for n in targets])
    kp_c, kp_t = np.stack([pose(n) for n in sources]), np.stack([pose(n) for n in targets])
    oracle = Oracle(root, splits=("gallery",))
    other = derangement(len(pairs), args.seed)
    rendered = np.stack([resize_rgb(oracle.image(t, c), size) for c, t in zip(sources, targets)])
    candidates = {
        "target": target, "condition (identity baseline)": condition, "oracle": rendered,
        "oracle, wrong pose": np.stack([resize_rgb(oracle.image(targets[other[i]], c), size)
                                        for i, c in enumerate(sources)]),
        "oracle, blurred (sigma 1.5 px)": np.stack([ndimage.gaussian_filter(o.astype(np.float64), (1.5, 1.5, 0))
                                                    .round().astype(np.uint8) for o in rendered]),
        "grey": np.full_like(target, 128),
    }
    print(f"references ready in {time.perf_counter() - start:.0f} s")
    with torch_threads(args.threads):
        models = [load_generator(c, "cpu") for c in args.checkpoint]
        for path, model in zip(args.checkpoint, models):
            dataset = PairDataset(root / "bounding_box_test", annotations, pairs, image_size=model.image_size)
            candidates[f"{Path(path).name} @ {model.iteration}"] = generated_by(model, dataset, size)
        for path in args.snapshot:
            if not models:
                parser.error("--snapshot needs a --checkpoint of the same architecture")
            model = models[0]
            model.generator.load_state_dict(fp32_weights(torch.load(path, map_location="cpu", weights_only=True)))
            dataset = PairDataset(root / "bounding_box_test", annotations, pairs, image_size=model.image_size)
            candidates[Path(path).stem] = generated_by(model, dataset, size)
    rows = []
    for name, generated in candidates.items():
        m = limb_margins(generated, target, condition, kp_t, kp_c)
        entry = limb_region_score(m["margin"], m["margin_plain"])
        rows.append({"images": name, "limb_region": round(entry["value"], 3), "plain_l1": round(entry["plain"], 3),
                     "pairs_scored": entry["pairs_scored"], "pairs_left_out": entry["pairs_left_out"]})
    print(f"\n{len(pairs)} test pairs at {size[0]} x {size[1]}\n")
    print("| images | limb_region | plain L1 | pairs scored |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['images']} | {r['limb_region']:.3f} | {r['plain_l1']:.3f} | {r['pairs_scored']} |")
    if args.out:
        write_csv(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
