"""Mean and seed spread of one variant's fine-tune curves (``bench/reid_finetune_curve.py``), and the
experiment's gains paired by seed, at every evaluated step count.

A curve run is one seed; the regime's conditions (full - none, oracle - copy, pona - copy, ...) are
judged on several, paired by seed as the sweep pairs them (``pipelines.sweep.paired_gains``, with the
step count in the role of the budget). Rows go to ``--out`` (CSV, and the mean curves with their seed
spread beside it as PNG); the Markdown tables are printed.

  python bench/reid_curve_seeds.py runs/regime/curve.csv --variant view400x24-lr0.005-ids400-jacket1-cam0-shared-800 \\
      --out bench/results/reid_curve_seeds.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from pipelines import methods
from pipelines.sweep import paired_gains, summary_table
from runtime.atomic import atomic_path


def seed_tables(curve: pd.DataFrame, variant: str, portion: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per method and step count: mean, std, seeds; per gain and step count: paired mean, std, seeds),
    for one portion: the tables have a column per step count, so portions are never mixed in a cell."""
    of_variant = curve[curve["variant"] == variant]
    if of_variant.empty:
        known = ", ".join(sorted(set(curve["variant"])))
        raise SystemExit(f"no rows of variant {variant!r} in the curve; it has: {known}")
    rows = of_variant[(of_variant["portion"] - portion).abs() < 1e-9].copy()
    if rows.empty:
        known = ", ".join(f"{p:g}" for p in sorted(set(of_variant["portion"])))
        raise SystemExit(f"variant {variant!r} has no rows at portion {portion:g}; it has portions {known}")
    # one row per (steps, seed, method): a rerun of the same seed replaces, never averages with, the old one
    rows = rows.drop_duplicates(["steps", "seed", "method"], keep="last")
    rows["budget"] = rows["steps"].astype(int)
    return summary_table(rows), paired_gains(rows)


def method_order(summary: pd.DataFrame) -> list[str]:
    """The methods present, in the experiment table's order, then any the table does not name (a derived set)."""
    present = set(summary["method"])
    return [m for m in dict.fromkeys([*methods.TABLE, *sorted(present)]) if m in present]


def markdown(frame: pd.DataFrame, key: str, fmt: str, order: list[str]) -> str:
    """One row per ``key`` value, one column per step count, 'mean ± std (n)'."""
    steps = sorted(frame["budget"].unique())
    lines = [f"| {key} | " + " | ".join(f"{s} steps" for s in steps) + " |", "|---|" + "---|" * len(steps)]
    for name in [n for n in order if n in set(frame[key])]:
        cells = []
        for s in steps:
            row = frame[(frame[key] == name) & (frame["budget"] == s)]
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            n = int(r["n_seeds"])
            cells.append(fmt.format(r["mAP_mean"]) + (f" ± {r['mAP_std']:.1f}" if n > 1 else "") + f" ({n})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: pd.DataFrame, png: Path, title: str) -> None:
    """Mean test mAP against steps per method, the seed spread shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    order = [m for m in ("full", "oracle", "pona", "patn", "copy", "none") if m in set(summary["method"])]
    for i, method in enumerate(order):
        rows = summary[summary["method"] == method].sort_values("budget")
        ax.plot(rows["budget"], rows["mAP_mean"], marker="o", ms=3, color=f"C{i}",
                label=f"{method} ({int(rows['n_seeds'].max())} seeds)")
        ax.fill_between(rows["budget"], rows["mAP_mean"] - rows["mAP_std"], rows["mAP_mean"] + rows["mAP_std"],
                        color=f"C{i}", alpha=0.2)
    ax.set_xlabel("fine-tune optimiser steps (every set the same)")
    ax.set_ylabel("test mAP (%), mean ± std over seeds")
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("curve", type=Path, help="the curve CSV that bench/reid_finetune_curve.py wrote")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--portion", type=float, default=0.2, help="the kept portion whose curves to summarise")
    parser.add_argument("--out", type=Path, help="CSV of both tables (long form); the plot beside it (.png)")
    args = parser.parse_args(argv)
    if not args.curve.is_file():
        print(f"{args.curve}: no such curve CSV; run bench/reid_finetune_curve.py first", file=sys.stderr)
        return 2
    summary, gains = seed_tables(pd.read_csv(args.curve), args.variant, args.portion)
    print(markdown(summary, "method", "{:.1f}", method_order(summary)))
    print()
    print(markdown(gains, "gain", "{:+.1f}", [f"{a} - {b}" for a, b in methods.gains()]))
    if args.out:
        table = pd.concat([summary.assign(kind="method"), gains.assign(kind="gain")], ignore_index=True)
        table = table.rename(columns={"budget": "steps"}).assign(variant=args.variant, portion=args.portion)
        with atomic_path(args.out) as tmp:
            table.to_csv(tmp, index=False)
        plot(summary, args.out.with_suffix(".png"), f"{args.variant}, p = {args.portion:g}")
        print(f"\n{args.out}, {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
