"""Does the torch thread count change a bf16 training's numbers? A few SGD steps of a ResNet-50 under
CPU bf16 autocast, each thread count run twice in its own process, one CSV row a run.

Equal rows within a thread count and different rows across them mean runs are deterministic for a
given machine and thread count only, which is why results.json records ``provenance.threads``
(README, "Runs are deterministic for a given machine and torch thread count").

    python bench/thread_count_numerics.py --threads 1 2 --out bench/results/thread_count_numerics.csv
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench_common import write_csv  # bench/ is on sys.path when this file runs as a script


def train(threads: int, steps: int) -> dict:
    """Run in a fresh process: the thread count must be set before torch's first parallel region."""
    import torch
    import torchvision

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=10).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(16, 3, 64, 32).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (16,))
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"threads": threads, "steps": steps, "loss": repr(loss.item()),
            "weight_sum": repr(sum(p.double().sum().item() for p in model.parameters()))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="bench/results/thread_count_numerics.csv")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one run, printed as a CSV row
    args = ap.parse_args()
    if args.one is not None:
        row = train(args.one, args.steps)
        print(",".join(str(row[k]) for k in ("threads", "steps", "loss", "weight_sum")))
        return 0
    rows = []
    for _ in range(args.repeats):
        for t in args.threads:
            out = subprocess.run([sys.executable, __file__, "--one", str(t), "--steps", str(args.steps)],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            threads, steps, loss, weight_sum = out.split(",")
            rows.append({"threads": int(threads), "steps": int(steps), "loss": loss, "weight_sum": weight_sum})
            print(rows[-1], flush=True)
    write_csv(args.out, rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
