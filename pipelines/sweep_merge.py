"""One Table VI from several sweeps' results.csv files.

A full grid (every method at every portion, seed and budget) costs too much to run as one command on
a small machine, so sweeps are run in parts: all methods at p = 0.2, then only the cheap ones at the
other portions. Each part writes its own results.csv; this command concatenates them and writes the
same tables, gains and plots a single sweep writes (``pipelines.sweep.write_tables``), plus
``merged_from.json`` naming every source file with its sha256.

    python -m pipelines.sweep_merge runs/sweep-p0.2-seeds0_1_2/results.csv \\
        runs/sweep-p0.2_0.5_1-seeds0_1_2/results.csv out=runs/sweep-regime

A (budget, portion, seed, method) that two parts both ran (the stage cache makes them the same run)
must agree on its mAP; a disagreement means the parts were not run with the same settings, and is an
error naming both files. The out folder must be new, empty, or one this command wrote before.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipelines.sweep import write_tables
from runtime.atomic import atomic_write_text
from runtime.checkpoint import file_sha256
from runtime.config import EXIT_BAD_INPUT, entry_point
from runtime.errors import ConfigError

PROG = "python -m pipelines.sweep_merge"
KEY = ["budget", "portion", "seed", "method"]
MARKER = "merged_from.json"


def read_results(path: Path) -> pd.DataFrame:
    """One sweep's results.csv, with the file it came from in a ``source`` column."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file (a sweep writes runs/sweep-*/results.csv)")
    frame = pd.read_csv(path)
    missing = [c for c in [*KEY, "mAP", "rank1"] if c not in frame.columns and c != "budget"]
    if missing:
        raise ConfigError(f"{path}: not a sweep's results.csv (no column {', '.join(missing)})")
    if "budget" not in frame.columns:  # sweeps before the budgets existed: the paper's epochs budget
        frame.insert(0, "budget", "epochs")
    return frame.assign(source=str(path))


def merge_results(frames: Sequence[pd.DataFrame], tolerance: float = 1e-6) -> pd.DataFrame:
    """The rows of every frame, each (budget, portion, seed, method) once; a run present in two
    frames must have the same mAP in both (``tolerance``, in mAP points)."""
    if not frames:
        raise ConfigError(f"{PROG}: give at least one results.csv")
    rows = pd.concat(frames, ignore_index=True)
    for key, group in rows.groupby(KEY, sort=False):
        if group["mAP"].max() - group["mAP"].min() > tolerance:
            budget, portion, seed, method = key
            found = ", ".join(f"{m:.4f} in {s}" for m, s in zip(group["mAP"], group["source"]))
            raise ConfigError(f"budget {budget}, p = {portion:g}, seed {seed}, {method}: the parts disagree "
                              f"({found}); merge only sweeps run with the same settings")
    merged = rows.drop_duplicates(subset=KEY, keep="first").drop(columns="source")
    return merged.sort_values(KEY, kind="stable").reset_index(drop=True)


def check_out(folder: Path) -> None:
    """Refuse a folder this command did not make (a user's files are never overwritten)."""
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / MARKER).is_file())):
        raise FileExistsError(f"out={folder}: exists and was not written by {PROG}; name a new folder")


def parse(argv: Sequence[str]) -> tuple[list[Path], Path]:
    sources, out = [], None
    for arg in argv:
        if arg.startswith("out="):
            out = Path(arg[len("out="):])
        elif "=" in arg.split("/")[0]:
            raise ConfigError(f"{arg}: unknown key (the keys: out=FOLDER; the rest are results.csv files)")
        else:
            sources.append(Path(arg))
    if out is None or not str(out):
        raise ConfigError("out=FOLDER is required: where the merged tables go (e.g. out=runs/sweep-regime)")
    if not sources:
        raise ConfigError("give the results.csv files to merge (runs/sweep-*/results.csv)")
    return sources, out


@entry_point(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(__doc__)
        return 0
    try:
        sources, out = parse(args)
        check_out(out)
        frames = [read_results(path) for path in sources]
    except (OSError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    results = merge_results(frames)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARKER, json.dumps(
        {"command": " ".join([PROG, *args]), "sources": [{"file": str(p), "sha256": file_sha256(p)} for p in sources],
         "rows": len(results)}, indent=2) + "\n")
    paths = write_tables(out, results)
    print(paths["markdown"].read_text())
    print(f"{len(results)} runs from {len(sources)} files; wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
