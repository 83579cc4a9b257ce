"""Re-ID speed side by side in one run: one training step (ResNet-50 ft_net forward + cross-entropy +
backward + SGD) and feature extraction per image (eval mode, image + mirror, layumi's protocol),
for fp32, bf16 autocast, and bf16 + channels_last (and fp32 + channels_last, and fp32 with PyTorch's
per-parameter SGD loop, the trainer before it used the fused SGD kernel), at a re-ID preset's
input size and batch (``--preset synth``: 64 x 32, batch 16, the default run's).

The variants are timed in interleaved rounds (one step of each per round, median over rounds), so
a machine shared with other work slows them alike and the printed ratios stay meaningful; never read
the absolute times alone. The code path is the trainer's: ``reid.model.build_model``,
``build_optimizer`` (fused SGD), ``runtime.device.autocast`` and ``reid.features.flip_sum_features``.

    python bench/reid_step.py                                   # CPU, synth preset, 1 thread
    python bench/reid_step.py --threads 2 --rounds 10
    python bench/reid_step.py --device cuda --preset market1501 # 256 x 128, batch 32 (the paper's)
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
from bench_common import sync
from torch import nn

from reid.features import flip_sum_features
from reid.model import build_model, build_optimizer
from reid.train_config import load_reid_config
from runtime.device import autocast, cpu_has_bf16


@dataclass(frozen=True)
class Variant:
    name: str
    dtype: torch.dtype
    channels_last: bool
    fused_sgd: bool = True

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


VARIANTS = (Variant("fp32-loop-sgd", torch.float32, False, fused_sgd=False), Variant("fp32", torch.float32, False), Variant("bf16", torch.bfloat16, False),
            Variant("bf16+channels_last", torch.bfloat16, True), Variant("fp32+channels_last", torch.float32, True))



class Bench:
    """A model, optimiser and fixed batch for one variant (each variant has its own copy, same seed)."""

    def __init__(self, variant: Variant, preset: str, device: torch.device, n_classes: int, eval_batch: int,
                 overrides: tuple[str, ...] = ()) -> None:
        cfg = load_reid_config(f"preset={preset}", "model.weights=random", *overrides)
        torch.manual_seed(0)
        self.variant, self.device = variant, device
        self.model, _ = build_model(cfg.model, n_classes)
        self.model.to(device, memory_format=variant.memory_format)
        o = cfg.optim
        self.optimizer = build_optimizer(self.model, o, device)
        if not variant.fused_sgd:  # the trainer before fused SGD: PyTorch's per-parameter loop
            self.optimizer = torch.optim.SGD(self.optimizer.param_groups, lr=o.lr, momentum=o.momentum,
                                             nesterov=o.nesterov, weight_decay=o.weight_decay)
        h, w = cfg.data.image_size
        g = torch.Generator().manual_seed(1)
        self.images = torch.randn(o.batch_size, 3, h, w, generator=g).to(device)
        self.labels = torch.randint(0, n_classes, (o.batch_size,), generator=g).to(device)
        self.eval_images = torch.randn(eval_batch, 3, h, w, generator=g).to(device)
        self.criterion = nn.CrossEntropyLoss()
        self.batch, self.size = o.batch_size, (h, w)

    def train_step(self) -> float:
        self.model.train()
        sync(self.device)
        t0 = time.perf_counter()
        images = self.images.contiguous(memory_format=self.variant.memory_format)
        with autocast(self.device, self.variant.dtype):
            logits = self.model(images)
        loss = self.criterion(logits.float(), self.labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        sync(self.device)
        return time.perf_counter() - t0

    def features(self) -> float:
        self.model.eval()
        sync(self.device)
        t0 = time.perf_counter()
        flip_sum_features(self.model, self.eval_images, dtype=self.variant.dtype,
                          memory_format=self.variant.memory_format)
        sync(self.device)
        return (time.perf_counter() - t0) / len(self.eval_images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the re-ID presets use 1)")
    parser.add_argument("--preset", default="synth", help="re-ID preset whose input size and batch are used")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds (median taken)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--classes", type=int, default=100, help="identities of the classifier")
    parser.add_argument("--eval-batch", type=int, default=64, help="images per feature-extraction batch")
    parser.add_argument("--batch", type=int, default=0, help="training batch (0: the preset's)")
    parser.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS],
                        choices=[v.name for v in VARIANTS])
    args = parser.parse_args()
    if "fp32" not in args.variants:
        parser.error("--variants must include fp32, the baseline of every ratio")

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    overrides = (f"optim.batch_size={args.batch}",) if args.batch else ()
    benches = [Bench(v, args.preset, device, args.classes, args.eval_batch, overrides) for v in VARIANTS
               if v.name in args.variants]
    b0 = benches[0]
    print(f"re-ID ResNet-50 ft_net, preset {args.preset}: input {b0.size[0]}x{b0.size[1]}, train batch {b0.batch}, "
          f"eval batch {args.eval_batch}; device {device}, threads {torch.get_num_threads()}, "
          f"native CPU bf16: {cpu_has_bf16()}")
    steps: dict[str, list[float]] = {b.variant.name: [] for b in benches}
    feats: dict[str, list[float]] = {b.variant.name: [] for b in benches}
    for r in range(args.warmup + args.rounds):
        for b in benches:  # interleaved: noise from other work hits every variant alike
            s, f = b.train_step(), b.features()
            if r >= args.warmup:
                steps[b.variant.name].append(s)
                feats[b.variant.name].append(f)
    base_s, base_f = statistics.median(steps["fp32"]), statistics.median(feats["fp32"])
    old = statistics.median(steps["fp32-loop-sgd"]) if "fp32-loop-sgd" in steps else float("nan")
    print(f"{'variant':<20} {'train step s':>12} {'images/s':>9} {'x fp32':>7} {'x loop-sgd':>10} | "
          f"{'feature ms/img':>14} {'x fp32':>7}")
    for b in benches:
        s, f = statistics.median(steps[b.variant.name]), statistics.median(feats[b.variant.name])
        print(f"{b.variant.name:<20} {s:12.4f} {b.batch / s:9.1f} {base_s / s:7.2f} {old / s:10.2f} | "
              f"{f * 1e3:14.3f} {base_f / f:7.2f}")


if __name__ == "__main__":
    main()
