"""Another generator in an existing Table VI sweep: rerun only the generator's rows, reuse the controls.

A regime sweep costs about 110 minutes a seed on a 2-core CPU, most of it in the copy, oracle and full
fine-tunes, which do not depend on the generator. To score another generator (a new release) in the
same experiment, this script takes the reference sweep's results.csv and a second sweep's, run with
the new generator (``generator.checkpoint=...``) for the generator's methods and at least one control
(``none``: a few minutes a seed). It refuses unless every row the two share outside the generator's
methods agrees exactly, seed by seed: the pipeline is deterministic on one machine (same seed, same
stages, same bits), so an exact match says the two sweeps ran the same experiment and the reference's
controls are the second sweep's too. It then writes the paired gains of the new generator's rows
against the reference's controls (``pipelines.sweep.paired_gains``), with the converged-generator
targets checked: pona - copy above 3 times its paired spread, pona - none at least half of
oracle - none, seed by seed.

    python bench/generator_swap_reid.py --reference bench/results/regime_sweep_p0.2_seeds012_results.csv \\
        --swapped runs/sweep-ngf32-val/results.csv --label pona3-ngf32-synth-val \\
        --out bench/results/regime_ngf32_val
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from pipelines.sweep import paired_gains
from runtime.atomic import atomic_path

KEY = ["budget", "portion", "seed", "method"]
GENERATED = ("pona", "patn")  # the methods whose images come from a generator


def read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SystemExit(f"{path}: no such results file (a sweep writes runs/sweep-*/results.csv)")
    frame = pd.read_csv(path)
    missing = [k for k in (*KEY, "mAP") if k not in frame]
    if missing:
        raise SystemExit(f"{path}: no column {missing[0]}; give a sweep's results.csv")
    return frame


def combine(reference: pd.DataFrame, swapped: pd.DataFrame, tolerance: float = 1e-9) -> pd.DataFrame:
    """The reference's rows with its generator rows replaced by the swapped sweep's, after checking that
    the controls both ran agree (the swapped sweep must share at least one)."""
    controls = swapped[~swapped["method"].isin(GENERATED)]
    shared = controls.merge(reference, on=KEY, suffixes=("_swapped", "_reference"))
    if shared.empty:
        raise SystemExit("the swapped sweep shares no control row (none, copy, oracle, full) with the reference; "
                         "run at least methods=none,pona with the reference's seeds and portions")
    off = shared[(shared["mAP_swapped"] - shared["mAP_reference"]).abs() > tolerance]
    if not off.empty:
        row = off.iloc[0]
        raise SystemExit(f"{row['method']} at p = {row['portion']:g}, seed {row['seed']}, {row['budget']} budget: "
                         f"mAP {float(row['mAP_swapped'])!r} here, {float(row['mAP_reference'])!r} in the reference; the two "
                         "sweeps did not run the same experiment (settings, code or machine differ)")
    new = swapped[swapped["method"].isin(GENERATED)]
    if new.empty:
        raise SystemExit("the swapped sweep has no pona or patn row; nothing to compare")
    kept = reference[~reference.set_index(KEY).index.isin(new.set_index(KEY).index)]
    return pd.concat([kept, new], ignore_index=True).sort_values(KEY, ignore_index=True)


def indexed_gains(results: pd.DataFrame) -> pd.DataFrame:
    """The sweep's paired gains (``pipelines.sweep.paired_gains``), looked up by (budget, gain, portion);
    ``results`` must carry a budget column."""
    return paired_gains(results).set_index(["budget", "gain", "portion"])


def gains_at(gains: pd.DataFrame, budget: str, portion: float, names: tuple[str, ...]) -> dict[str, pd.Series]:
    """The named gains of one budget and portion that the sweep has (a missing one is left out, never guessed)."""
    return {name: gains.loc[(budget, name, portion)] for name in names if (budget, name, portion) in gains.index}


def targets(results: pd.DataFrame, gains: pd.DataFrame | None = None) -> pd.DataFrame:
    """The converged-generator issue's re-ID targets, per budget and portion: pona - copy > 3 times its
    paired spread; pona - none >= half of oracle - none. The paired differences are the sweep's own
    (``indexed_gains``; pass them in when already computed), so a verdict reads the gain the gains table
    prints. Portions where pona did not run, or p = 1 (nothing is missing, every method trains the full
    set), have no row."""
    gains = indexed_gains(results) if gains is None else gains
    rows = []
    for budget, portion in sorted({(b, p) for b, _, p in gains.index}):
        if portion >= 1:
            continue
        found = gains_at(gains, budget, portion, ("pona - copy", "pona - none", "oracle - none"))
        if "pona - copy" in found:
            d = found["pona - copy"]
            n = int(d["n_seeds"])
            bar = 3 * d["mAP_std"] if n > 1 else float("nan")  # one seed has no spread to beat
            rows.append({"budget": budget, "portion": portion, "target": "pona - copy > 3 x paired spread",
                         "value": d["mAP_mean"], "threshold": bar, "n_seeds": n,
                         "met": bool(n > 1 and d["mAP_mean"] > bar)})
        if "pona - none" in found and "oracle - none" in found:
            gain, half = found["pona - none"], found["oracle - none"]["mAP_mean"] / 2
            rows.append({"budget": budget, "portion": portion, "target": "pona - none >= (oracle - none) / 2",
                         "value": gain["mAP_mean"], "threshold": half, "n_seeds": int(gain["n_seeds"]),
                         "met": bool(gain["mAP_mean"] >= half)})
    return pd.DataFrame(rows, columns=["budget", "portion", "target", "value", "threshold", "n_seeds", "met"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, type=Path, help="the sweep whose controls are reused")
    parser.add_argument("--swapped", required=True, type=Path, help="the sweep run with the other generator")
    parser.add_argument("--label", required=True, help="the other generator's name, written in every row")
    parser.add_argument("--out", required=True, help="prefix of the CSVs written: _results, _gains, _targets")
    args = parser.parse_args()
    results = combine(read(args.reference), read(args.swapped))
    results["generator"] = [args.label if m in GENERATED else "" for m in results["method"]]
    out = {"results": results, "gains": paired_gains(results.drop(columns="generator")),
           "targets": targets(results)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for name, frame in out.items():
        with atomic_path(Path(f"{args.out}_{name}.csv")) as tmp:
            frame.to_csv(tmp, index=False)
        print(f"wrote {args.out}_{name}.csv")
    print(out["targets"].to_string(index=False))


if __name__ == "__main__":
    main()
