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
import json
import logging
import time
from pathlib import Path

from bench_common import append_csv_row

FIELDS = ("variant", "seed", "mAP", "rank1", "reid_seconds", "pretrain_seconds", "total_seconds", "overrides")


def run_variant(name: str, overrides: list[str], seed: int, out: Path) -> dict:
    from pipelines.config import load_pipeline_config
    from pipelines.run import run_pipeline

    cfg = load_pipeline_config(f"out={out}", f"seed={seed}", "methods=[full]", "evaluate_generator=false",
                               "reid.threads=1", "reid.progress=false", *overrides)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.read_csv(csv_path)
    order = list(dict.fromkeys(table["variant"]))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(order)), 4))
    for i, name in enumerate(order):
        values = table.loc[table["variant"] == name, "mAP"]
        ax.scatter([i] * len(values), values, color="grey", s=14, zorder=2)
        ax.bar(i, values.mean(), color="tab:blue", alpha=0.6, zorder=1)
        ax.text(i, values.mean() + 0.5, f"{values.mean():.1f}", ha="center", fontsize=8)
    ax.axhline(40, color="tab:red", linestyle="--", linewidth=1, label="target 40")
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("full-data mAP (%), torchreid")
    ax.set_title("re-ID recipe on default SynthMarket (bars: mean, dots: seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="", help="name of the variant (a CSV row label)")
    parser.add_argument("overrides", nargs="*", help="pipeline key=value overrides of this variant")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="runs/recipe", help="pipeline out= (cache shared by variants) and CSV/PNG")
    parser.add_argument("--plot-only", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "recipe.csv"
    if not args.plot_only:
        if not args.variant:
            parser.error("--variant NAME is required (or --plot-only)")
        for seed in args.seeds:
            row = run_variant(args.variant, args.overrides, seed, out)
            append_csv_row(csv_path, row, FIELDS)
            print(json.dumps(row), flush=True)
    plot(csv_path, out / "recipe.png")
    print(f"{csv_path}, {out / 'recipe.png'}")


if __name__ == "__main__":
    main()
