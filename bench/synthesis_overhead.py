"""Synthesis end to end (``augment.synthesize``: decode the condition JPEGs, resize, pose maps,
generate, resize back, encode, write atomically) against the generator's pure forward time on the
same images at the same batch size, in one run. The gap is what the library adds around the model.

The generator has random weights (the cost does not depend on them), at the ``synth`` preset's size
and, with ``--preset market1501``, at the paper's. Rows come from SynthMarket's training split at
p = 0.2 (each missing image re-synthesised from a kept one), as the pipeline plans them.

    python bench/synthesis_overhead.py                       # synth size, 512 images
    python bench/synthesis_overhead.py --preset market1501 --images 64
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_common import stacked_pairs

from augment import plan_synthesis, select_conditions, subsample, synthesize
from pona_model.inference import load_generator
from pona_model.pair_dataset import PairDataset
from pona_model.train_config import load_train_config
from pona_model.trainer import Trainer
from poseformats.annotations import read_annotations
from reid.market_index import index_market


def make_checkpoint(preset: str, folder: Path) -> Path:
    cfg = load_train_config(f"preset={preset}", f"out={folder}", "loss.vgg_missing=disable")
    torch.manual_seed(0)
    return Trainer(cfg, check_data=False).save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="synth")
    parser.add_argument("--data", default="data/synthmarket")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    tmp = Path(tempfile.mkdtemp(prefix="synthesis-bench-"))
    try:
        checkpoint = make_checkpoint(args.preset, tmp / "gen")
        keypoints = read_annotations(data / "market-annotation-train.csv")
        kept, missing = subsample(index_market(data, splits=("train",), progress=False), 0.2, seed=0)
        plan = select_conditions(missing, kept, "random", seed=0)
        plan = plan_synthesis(plan, keypoints, data / "bounding_box_train", "skip")
        plan = plan[plan["action"] == "generate"].head(args.images)
        model = load_generator(checkpoint, args.device, precision=args.precision)
        pairs = plan.rename(columns={"condition": "from", "name": "to"})[["from", "to"]]
        ds = PairDataset(data / "bounding_box_train", keypoints, pairs, image_size=model.image_size)
        batch = stacked_pairs(ds)
        cond, kc, kt = batch["condition"], batch["kp_condition"], batch["kp_target"]
        forward, end_to_end = [], []
        for rnd in range(args.rounds):
            start = time.perf_counter()
            for i in range(0, len(ds), args.batch_size):
                model.generate(cond[i : i + args.batch_size], kc[i : i + args.batch_size], kt[i : i + args.batch_size])
            forward.append(time.perf_counter() - start)
            out = tmp / f"out{rnd}"
            start = time.perf_counter()
            synthesize(plan, keypoints, checkpoint=checkpoint, images_dir=data / "bounding_box_train", out_dir=out,
                       device=args.device, scheduler="inprocess", batch_size=args.batch_size,
                       shard_size=len(plan), precision=args.precision)
            end_to_end.append(time.perf_counter() - start)
            shutil.rmtree(out)
        f, e = statistics.median(forward), statistics.median(end_to_end)
        result = {"preset": args.preset, "images": len(plan), "batch_size": args.batch_size,
                  "precision": model.precision, "forward_s": round(f, 3), "end_to_end_s": round(e, 3),
                  "overhead_pct": round(100 * (e / f - 1), 1), "forward_images_per_s": round(len(plan) / f, 1),
                  "end_to_end_images_per_s": round(len(plan) / e, 1)}
        print(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
