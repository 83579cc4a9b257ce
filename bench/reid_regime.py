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
import json
import logging
import time
from pathlib import Path

from bench_common import append_csv_row

METHOD_COLUMNS = ("none", "copy", "oracle", "full")
FIELDS = ("variant", "seed", "portion", *METHOD_COLUMNS, "full_minus_none", "copy_minus_none",
          "data_seconds", "pretrain_seconds", "reid_seconds", "total_seconds", "overrides")


def run_variant(name: str, overrides: list[str], seed: int, portion: float, methods: list[str], out: Path) -> dict:
    from pipelines.config import load_pipeline_config
    from pipelines.run import run_pipeline

    cfg = load_pipeline_config(f"out={out}", f"seed={seed}", f"portion={portion}", f"methods=[{','.join(methods)}]",
                               "evaluate_generator=false", "reid.threads=1", "reid.progress=false", *overrides)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.read_csv(csv_path)
    order = list(dict.fromkeys(table["variant"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(order)), 4))
    width = 0.8 / len(METHOD_COLUMNS)
    for k, method in enumerate(METHOD_COLUMNS):
        means = [pd.to_numeric(table.loc[table["variant"] == v, method], errors="coerce").mean() for v in order]
        ax.bar([i + (k - 1.5) * width for i in range(len(order))], means, width, label=method)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mAP (%), torchreid")
    ax.set_title("re-ID regimes on SynthMarket (mean over the seeds run)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="", help="name of the candidate (a CSV row label)")
    parser.add_argument("overrides", nargs="*", help="pipeline key=value overrides of this candidate")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--portion", type=float, default=0.2)
    parser.add_argument("--methods", default="none,copy,full")
    parser.add_argument("--out", default="runs/regime", help="pipeline out= (cache shared by candidates) and CSV/PNG")
    parser.add_argument("--plot-only", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "regime.csv"
    if not args.plot_only:
        if not args.variant:
            parser.error("--variant NAME is required (or --plot-only)")
        for seed in args.seeds:
            row = run_variant(args.variant, args.overrides, seed, args.portion, args.methods.split(","), out)
            append_csv_row(csv_path, row, FIELDS)
            print(json.dumps(row), flush=True)
    plot(csv_path, out / "regime.png")
    print(f"{csv_path}, {out / 'regime.png'}")


if __name__ == "__main__":
    main()
