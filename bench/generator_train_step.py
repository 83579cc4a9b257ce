"""One PoNA training iteration (G + D_A + D_P, forward, backward, Adam): fp32 against bf16 autocast,
NCHW against channels_last, side by side in one run.

The machine is shared and noisy, so the variants are interleaved (round-robin, best-of and median
over rounds) and the figure that matters is the ratio to the fp32 NCHW reference of the same run.
Random images and random in-frame keypoints stand in for data: the step's cost does not depend on
the pixels. The trainer is the project's own (``pona_model.trainer.Trainer.step``), built without a
dataset.

    python bench/generator_train_step.py                          # synth preset, batch 16 and 64
    python bench/generator_train_step.py --preset market1501 --batch-sizes 4 --rounds 3
    python bench/generator_train_step.py --device cuda --preset market1501 --batch-sizes 32
"""

from __future__ import annotations

import argparse
import functools

import torch
from bench_common import interleaved_medians, write_csv

from pona_model.train_config import load_train_config
from pona_model.trainer import Trainer

VARIANTS = (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True))


def random_batch(batch: int, h: int, w: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    kp = torch.stack([torch.randint(0, h, (batch, 18), generator=g),
                      torch.randint(0, w, (batch, 18), generator=g)], -1)
    return {"condition": torch.rand(batch, 3, h, w, generator=g) * 2 - 1,
            "target": torch.rand(batch, 3, h, w, generator=g) * 2 - 1,
            "kp_condition": kp, "kp_target": kp.flip(0)}


def build_trainer(preset: str, device: str, precision: str, channels_last: bool, batch: int) -> Trainer:
    cfg = load_train_config(f"preset={preset}", f"device={device}", f"precision={precision}",
                            f"channels_last={str(channels_last).lower()}", f"schedule.batch_size={batch}",
                            "loss.vgg_missing=disable", "loss.gan_start=0",  # the full iteration, GAN terms included
                            "out=/nonexistent-bench-folder")
    torch.manual_seed(0)
    return Trainer(cfg, check_data=False)


def run_steps(trainer: Trainer, data: dict[str, torch.Tensor], steps: int) -> None:
    for _ in range(steps):
        trainer.step(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="synth")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each times every variant once")
    parser.add_argument("--steps", type=int, default=3, help="timed iterations per variant per round")
    parser.add_argument("--csv", default="", help="also write the rows to this CSV")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for batch in args.batch_sizes:
        trainers = {v: build_trainer(args.preset, args.device, v[0], v[1], batch) for v in VARIANTS}
        dev = next(iter(trainers.values())).device
        h, w = next(iter(trainers.values())).config.generator.image_size
        data = random_batch(batch, h, w, seed=batch)
        steps = {v: functools.partial(run_steps, t, data, args.steps) for v, t in trainers.items()}
        seconds = {v: total / args.steps for v, total in interleaved_medians(steps, args.rounds, dev).items()}
        ref = seconds[VARIANTS[0]]
        print(f"{args.preset}, {h}x{w}, batch {batch}, device {dev}, threads {torch.get_num_threads()}")
        for v in VARIANTS:
            med = seconds[v]
            row = {"preset": args.preset, "batch": batch, "precision": v[0],
                   "layout": "channels_last" if v[1] else "NCHW", "s_per_iter": round(med, 4),
                   "images_per_s": round(batch / med, 2), "speedup_vs_fp32_nchw": round(ref / med, 2)}
            rows.append(row)
            print(f"  {row['precision']:5s} {row['layout']:13s} {med:7.3f} s/iter  {batch / med:8.1f} img/s  "
                  f"x{ref / med:4.2f}")
    if args.csv:
        write_csv(args.csv, rows)


if __name__ == "__main__":
    main()
