"""What Table VI's regime must show, checked on a sweep's results.csv, next to what a generator must win in it.

A sweep's gains table (``pipelines.sweep.paired_gains``) holds the differences; whether they clear the
regime's bars is a second step that was done by hand until now. This script does it, so every "met" or
"not met" in the README comes from one command over the rows it reads (docs/reid-protocol.md, "The regime
preset", says why each bar is where it is):

- full - none >= 15 mAP at p = 0.2 (missing data costs enough to measure what a method wins back);
- none rises with p over the sweep's portions, mean over seeds (more real images never hurt);
- oracle - copy >= 5 mAP at p = 0.2 and >= 5 times its paired seed spread (a perfect pose transfer
  is worth more than copying kept images);
- copy - none <= (full - none) / 3 at p = 0.2 (copying is not what closes the gap);
- full >= 40 mAP (the task is learnt at all);
- and, per budget and portion, the generator's two (``generator_swap_reid.targets``): pona - copy above
  3 times its paired spread, pona - none at least half of oracle - none.

Every difference is paired by seed (same kept set, same re-ID start); each row says how many seeds it
rests on. A bar needing a row the sweep lacks is left out, never guessed.

    python bench/regime_targets.py runs/sweep-p0.2_0.5_1-seeds0_1_2/results.csv \\
        --out bench/results/regime_epyc_grid_targets.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from generator_swap_reid import gains_at, indexed_gains, read
from generator_swap_reid import targets as generator_targets

from runtime.atomic import atomic_path

COLUMNS = ["budget", "portion", "target", "value", "threshold", "n_seeds", "met"]
REDUCED = 0.2  # the portion the paper's Table VI reads its gains at
FULL_MINUS_NONE = 15.0
ORACLE_MINUS_COPY = 5.0
SPREADS = 5.0
FULL_MAP = 40.0
REGIME_GAINS = ("full - none", "oracle - copy", "copy - none")  # the paired gains the bars at p = 0.2 read


def _row(budget: str, portion: float | None, target: str, value: float, threshold: float, n: int,
         met: bool) -> dict:
    return {"budget": budget, "portion": portion, "target": target, "value": value, "threshold": threshold,
            "n_seeds": n, "met": bool(met)}


def _with_budget(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of a run without a budget column were trained under the default, the epochs budget."""
    return results if "budget" in results else results.assign(budget="epochs")


def regime_targets(results: pd.DataFrame, gains: pd.DataFrame | None = None) -> pd.DataFrame:
    """The regime's bars, one row each, per step budget; the paired differences are the sweep's own
    (``generator_swap_reid.indexed_gains``; pass them in when already computed), so a bar reads the same
    gain the gains table prints."""
    frame = _with_budget(results)
    gains = indexed_gains(frame) if gains is None else gains
    rows = []
    for budget, part in frame.groupby("budget", sort=False):
        found = gains_at(gains, budget, REDUCED, REGIME_GAINS)
        full_none, oracle_copy, copy_none = (found.get(name) for name in REGIME_GAINS)
        if full_none is not None:
            rows.append(_row(budget, REDUCED, f"full - none >= {FULL_MINUS_NONE:g}", full_none["mAP_mean"],
                             FULL_MINUS_NONE, full_none["n_seeds"], full_none["mAP_mean"] >= FULL_MINUS_NONE))
        if oracle_copy is not None:
            n = oracle_copy["n_seeds"]
            bar = max(ORACLE_MINUS_COPY, SPREADS * oracle_copy["mAP_std"]) if n > 1 else float("nan")
            rows.append(_row(budget, REDUCED, f"oracle - copy >= {ORACLE_MINUS_COPY:g} and >= {SPREADS:g} x paired spread",
                             oracle_copy["mAP_mean"], bar, n, n > 1 and oracle_copy["mAP_mean"] >= bar))
        if copy_none is not None and full_none is not None:
            third = full_none["mAP_mean"] / 3
            rows.append(_row(budget, REDUCED, "copy - none <= (full - none) / 3", copy_none["mAP_mean"], third,
                             copy_none["n_seeds"], copy_none["mAP_mean"] <= third))
        wide = part.pivot_table(index=["portion", "seed"], columns="method", values="mAP")
        if "none" in wide and wide.index.get_level_values("portion").nunique() > 1:
            means = wide["none"].groupby(level="portion").mean().sort_index()
            steps = means.diff().dropna()
            n = int(wide["none"].groupby(level="portion").count().min())
            rows.append(_row(budget, None, "none rises with p (smallest rise between portions)", steps.min(), 0.0, n,
                             bool((steps > 0).all())))
        if "full" in wide:
            full = wide["full"].groupby(level="seed").first().dropna()  # the full set does not depend on the portion
            rows.append(_row(budget, None, f"full >= {FULL_MAP:g}", full.mean(), FULL_MAP, len(full),
                             full.mean() >= FULL_MAP))
    return pd.DataFrame(rows, columns=COLUMNS)


def all_targets(results: pd.DataFrame) -> pd.DataFrame:
    """The regime's bars, then the generator's, from one computation of the sweep's paired gains."""
    frame = _with_budget(results)
    gains = indexed_gains(frame)
    return pd.concat([regime_targets(frame, gains), generator_targets(frame, gains)], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a sweep's results.csv (or several merged by pipelines.sweep_merge)")
    parser.add_argument("--out", type=Path, default=None, help="CSV to write the rows to (default: print only)")
    args = parser.parse_args()
    table = all_targets(read(args.results))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.out) as tmp:
            table.to_csv(tmp, index=False)
        print(f"wrote {args.out}")
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
