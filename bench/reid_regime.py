"""Which re-ID regime lets the experiment measure augmentation? Candidates side by side.

A regime is a re-ID start, a fine-tune and the experiment's size (pipeline ``key=value`` overrides).
For each candidate and seed this runs the pipeline at ``--portion`` with the methods that need no
generator (``none``, ``copy``, ``full``; ``oracle`` too when asked) and records every method's mAP and
the seconds of each stage kind, so the table shows at once whether missing data costs mAP
(full - none), whether copying kept images closes the gap (copy - none) and what it costs in time.
Runs use one torch thread (``reid.threads=1``) so that two invocations share two cores.

Rows go to ``--out/regime.csv``; ``--out/regime.png`` plots each candidate's methods.

  python bench/reid_regime.py --variant today
  python bench/reid_regime.py --variant ids400 data.synthmarket.n_train_ids=400 auxiliary.n_ids=100
  python bench/reid_regime.py --plot-only
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

from bench_common import save_variant_axes, variant_axes, variant_command, variant_config, variant_parser

METHOD_COLUMNS = ("none", "copy", "oracle", "full")
FIELDS = ("variant", "seed", "portion", *METHOD_COLUMNS, "full_minus_none", "copy_minus_none",
          "data_seconds", "pretrain_seconds", "reid_seconds", "total_seconds", "overrides")


def run_variant(name: str, overrides: list[str], seed: int, portion: float, methods: list[str], out: Path) -> dict:
    from pipelines.run import run_pipeline

    cfg = variant_config(out, seed, f"portion={portion}", f"methods=[{','.join(methods)}]", *overrides)
    t0 = time.perf_counter()
    report = run_pipeline(cfg)
    stages = report["stages"]

    def seconds(*prefixes: str) -> float:
        return round(sum(s["seconds"] for n, s in stages.items() if n.startswith(prefixes)), 1)

    row = {"variant": name, "seed": seed, "portion": portion, "overrides": " ".join(overrides),
           "data_seconds": seconds("prepare", "subsample", "synthesize", "merge"),
           "pretrain_seconds": seconds("pretrain_reid"), "reid_seconds": seconds("train_reid", "evaluate_reid"),
           "total_seconds": round(time.perf_counter() - t0, 1)}
    for method in METHOD_COLUMNS:
        row[method] = round(report["methods"][method]["mAP"], 2) if method in report["methods"] else ""
    if row["full"] != "" and row["none"] != "":
        row["full_minus_none"] = round(row["full"] - row["none"], 2)
    if row["copy"] != "" and row["none"] != "":
        row["copy_minus_none"] = round(row["copy"] - row["none"], 2)
    return row


def plot(csv_path: Path, png: Path) -> None:
    import pandas as pd

    table, fig, ax, order = variant_axes(csv_path, inches_per_variant=1.6, min_inches=6)
    width = 0.8 / len(METHOD_COLUMNS)
    for k, method in enumerate(METHOD_COLUMNS):
        means = [pd.to_numeric(table.loc[table["variant"] == v, method], errors="coerce").mean() for v in order]
        ax.bar([i + (k - 1.5) * width for i in range(len(order))], means, width, label=method)
    save_variant_axes(fig, ax, order, png, ylabel="mAP (%), torchreid",
                      title="re-ID regimes on SynthMarket (mean over the seeds run)")


def measure(args: argparse.Namespace, out: Path) -> Iterator[dict]:
    for seed in args.seeds:
        yield run_variant(args.variant, args.overrides, seed, args.portion, args.methods.split(","), out)


def main() -> None:
    parser = variant_parser(__doc__, noun="candidate", out="runs/regime")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--portion", type=float, default=0.2)
    parser.add_argument("--methods", default="none,copy,full")
    variant_command(parser, csv_name="regime.csv", fields=FIELDS, measure=measure, plot=plot)


if __name__ == "__main__":
    main()
