"""Re-ID recipe search on the default SynthMarket: the full-data model's torchreid mAP for recipe
variants and seeds, through the pipeline (``methods=[full]``), so shared stages (the dataset, the
auxiliary identities, a pretraining) are rendered and trained once and cached under ``--out``.

Each variant is a name and pipeline ``key=value`` overrides; every run uses one torch thread
(``reid.threads=1``), so two invocations can run side by side on two cores. Rows are appended to
``--out/recipe.csv`` (variant, seed, mAP, rank-1, seconds of the re-ID stages, overrides) and
``--out/recipe.png`` plots mAP per variant (mean and each seed).

  python bench/reid_recipe.py --variant random reid.model.weights=random --seeds 0 1 2
  python bench/reid_recipe.py --variant aux12 reid.model.weights=auxiliary pretrain.epochs=12 --seeds 0
  python bench/reid_recipe.py --plot-only
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

from bench_common import save_variant_axes, variant_axes, variant_command, variant_config, variant_parser

FIELDS = ("variant", "seed", "mAP", "rank1", "reid_seconds", "pretrain_seconds", "total_seconds", "overrides")


def run_variant(name: str, overrides: list[str], seed: int, out: Path) -> dict:
    from pipelines.run import run_pipeline

    cfg = variant_config(out, seed, "methods=[full]", *overrides)
    t0 = time.perf_counter()
    report = run_pipeline(cfg)
    stages = report["stages"]
    full = report["methods"]["full"]
    return {"variant": name, "seed": seed, "mAP": round(full["mAP"], 2), "rank1": round(full["rank1"], 2),
            "reid_seconds": round(sum(s["seconds"] for n, s in stages.items()
                                      if n.startswith(("train_reid", "evaluate_reid"))), 1),
            "pretrain_seconds": round(stages.get("pretrain_reid", {}).get("seconds", 0.0), 1),
            "total_seconds": round(time.perf_counter() - t0, 1), "overrides": " ".join(overrides)}


def plot(csv_path: Path, png: Path) -> None:
    table, fig, ax, order = variant_axes(csv_path, inches_per_variant=1.2, min_inches=5)
    for i, name in enumerate(order):
        values = table.loc[table["variant"] == name, "mAP"]
        ax.scatter([i] * len(values), values, color="grey", s=14, zorder=2)
        ax.bar(i, values.mean(), color="tab:blue", alpha=0.6, zorder=1)
        ax.text(i, values.mean() + 0.5, f"{values.mean():.1f}", ha="center", fontsize=8)
    ax.axhline(40, color="tab:red", linestyle="--", linewidth=1, label="target 40")
    save_variant_axes(fig, ax, order, png, ylabel="full-data mAP (%), torchreid",
                      title="re-ID recipe on default SynthMarket (bars: mean, dots: seeds)")


def measure(args: argparse.Namespace, out: Path) -> Iterator[dict]:
    for seed in args.seeds:
        yield run_variant(args.variant, args.overrides, seed, out)


def main() -> None:
    parser = variant_parser(__doc__, noun="variant", out="runs/recipe")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    variant_command(parser, csv_name="recipe.csv", fields=FIELDS, measure=measure, plot=plot)


if __name__ == "__main__":
    main()
