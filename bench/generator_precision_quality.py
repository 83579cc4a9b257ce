"""Is bf16 autocast safe for the generator? Two checks, written as CSV + PNG.

1. Inference: one checkpoint's outputs on the first ``--pairs`` test pairs in fp32 and in bf16
   (max and mean absolute difference in 8-bit grey levels, and SSIM between the two outputs).
2. Training: the same recipe trained from the same seed in fp32 and in bf16 for ``--iterations``;
   the L1 curves side by side (``train_l1.png``) and the seconds each took.

    python bench/generator_precision_quality.py --iterations 300 --out runs/bench/precision
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
from bench_common import stacked_pairs

from pona_model.inference import load_generator
from pona_model.metrics.ssim import ssim
from pona_model.pair_dataset import PairDataset
from pona_model.sample_grid import to_uint8
from pona_model.train_config import load_train_config
from pona_model.trainer import Trainer
from poseformats.annotations import read_annotations, read_pairs
from runtime.training import LOG_NAME


def train(precision: str, args: argparse.Namespace, out: Path) -> tuple[Path, list[dict], float]:
    folder = out / f"train-{precision}"
    cfg = load_train_config(f"preset={args.preset}", f"data.root={args.train_data}", f"precision={precision}",
                            f"threads={args.threads}", "num_workers=0", "sample_every=0", "log_every=10",
                            "resume=false", f"out={folder}", *args.set)
    if (folder / "checkpoint.pt").exists():
        (folder / "checkpoint.pt").unlink()
    start = time.perf_counter()
    Trainer(cfg).fit(max_iterations=args.iterations)
    seconds = time.perf_counter() - start
    records = [json.loads(x) for x in (folder / LOG_NAME).read_text().splitlines()]
    return folder / "checkpoint.pt", [r for r in records if "g_l1" in r], seconds


def compare_inference(checkpoint: Path, data: Path, n: int) -> dict[str, float]:
    fp32 = load_generator(checkpoint, "cpu", precision="fp32")
    bf16 = load_generator(checkpoint, "cpu", precision="bf16")
    keypoints = read_annotations(data / "market-annotation-test.csv")
    pairs = read_pairs(data / "market-pairs-test.csv", known_names=keypoints).head(n)
    ds = PairDataset(data / "bounding_box_test", keypoints, pairs, image_size=fp32.image_size)
    batch = stacked_pairs(ds)
    cond, kc, kt = batch["condition"], batch["kp_condition"], batch["kp_target"]
    a, b = to_uint8(fp32.generate(cond, kc, kt).cpu()), to_uint8(bf16.generate(cond, kc, kt).cpu())
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"pairs": len(ds), "max_abs_diff_grey_levels": int(diff.max()),
            "mean_abs_diff_grey_levels": round(float(diff.mean()), 3),
            "ssim_bf16_vs_fp32": round(float(np.mean(ssim(b, a))), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="synth")
    parser.add_argument("--set", nargs="*", default=[])
    parser.add_argument("--train-data", default="data/synthmarket-aux")
    parser.add_argument("--data", default="data/synthmarket")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench/precision")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {p: train(p, args, out) for p in ("fp32", "bf16")}
    with open(out / "train_l1.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["iteration", "g_l1_fp32", "g_l1_bf16"])
        for r32, r16 in zip(runs["fp32"][1], runs["bf16"][1]):
            writer.writerow([r32["iteration"], r32["g_l1"], r16["g_l1"]])
    summary = {"train_seconds": {p: round(runs[p][2], 1) for p in runs},
               "train_speedup_bf16": round(runs["fp32"][2] / runs["bf16"][2], 2),
               "final_l1": {p: runs[p][1][-1]["g_l1"] for p in runs},
               "inference": compare_inference(runs["fp32"][0], Path(args.data), args.pairs)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for p, style in (("fp32", "-"), ("bf16", "--")):
        ax.plot([r["iteration"] for r in runs[p][1]], [r["g_l1"] for r in runs[p][1]], style, label=p)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training L1 (G)")
    ax.set_title(f"{args.preset}: same seed, fp32 vs bf16 autocast")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "train_l1.png", dpi=110)


if __name__ == "__main__":
    main()
