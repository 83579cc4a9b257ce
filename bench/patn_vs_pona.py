"""PATN against PoNA at the same size, side by side in one run: parameters, generator forward
(eval, no grad) and one full training iteration (G + D_A + D_P, forward, backward, Adam) through
the project's own trainer (``Trainer.step``), built without a dataset.

The machine is shared and noisy, so the two models are interleaved (round-robin) and the median
over rounds is reported with the PATN / PoNA ratio of the same run. Random images and random
in-frame keypoints stand in for data: the cost does not depend on the pixels.

    python bench/patn_vs_pona.py                                    # synth vs patn-synth, batch 16
    python bench/patn_vs_pona.py --presets market1501 patn-market1501 --batch 4 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from generator_train_step import random_batch  # bench/ is on sys.path when this file runs as a script

from pona_model.generator import generator_pose_pair
from pona_model.summary import trainable_parameters
from pona_model.train_config import load_train_config
from pona_model.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs=2, default=["synth", "patn-synth"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each times both models")
    parser.add_argument("--steps", type=int, default=3, help="timed calls per model per round (their mean)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trainers = {}
    for preset in args.presets:
        cfg = load_train_config(f"preset={preset}", f"device={args.device}", f"precision={args.precision}",
                                f"schedule.batch_size={args.batch}", "loss.vgg_missing=disable",
                                "out=/nonexistent-bench-folder")
        torch.manual_seed(0)
        trainers[preset] = Trainer(cfg, check_data=False)
    first = next(iter(trainers.values()))
    h, w = first.config.generator.image_size
    data = random_batch(args.batch, h, w, seed=0)
    forward: dict[str, list[float]] = {p: [] for p in trainers}
    step: dict[str, list[float]] = {p: [] for p in trainers}

    def sync() -> None:
        if first.device.type == "cuda":
            torch.cuda.synchronize(first.device)

    def time_forward(t: Trainer) -> float:
        g = t.generator.eval()
        cond = data["condition"].to(t.device)
        pair = generator_pose_pair(t.config.generator, data["kp_condition"].to(t.device),
                                   data["kp_target"].to(t.device))
        with torch.no_grad(), t._autocast():
            sync()
            start = time.perf_counter()
            for _ in range(args.steps):
                g(cond, pair)
            sync()
        g.train()
        return (time.perf_counter() - start) / args.steps

    def time_step(t: Trainer) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(args.steps):
            t.step(data)
        sync()
        return (time.perf_counter() - start) / args.steps

    for t in trainers.values():  # warm-up (oneDNN primitive creation, allocator)
        time_forward(t), time_step(t)
    for _ in range(args.rounds):
        for p, t in trainers.items():
            forward[p].append(time_forward(t))
            step[p].append(time_step(t))
    print(f"{h} x {w}, batch {args.batch}, device {first.device}, {args.precision}, "
          f"threads {torch.get_num_threads()}, median of {args.rounds} interleaved rounds of {args.steps} calls")
    print(f"  {'preset':<16} {'arch':<5} {'blocks':>6} {'G params':>12} {'forward s':>10} {'train iter s':>13}")
    for p, t in trainers.items():
        g = t.config.generator
        print(f"  {p:<16} {g.arch:<5} {g.n_blocks:>6} {trainable_parameters(t.generator):>12,d} "
              f"{statistics.median(forward[p]):>10.4f} {statistics.median(step[p]):>13.4f}")
    a, b = args.presets
    print(f"  ratio {b} / {a}: forward x{statistics.median(forward[b]) / statistics.median(forward[a]):.2f}, "
          f"training iteration x{statistics.median(step[b]) / statistics.median(step[a]):.2f}")


if __name__ == "__main__":
    main()
