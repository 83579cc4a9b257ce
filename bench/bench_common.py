"""What the benchmark scripts share: waiting for the device, timing variants round by round, writing
their rows as CSV, and the command line of a search over pipeline variants."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

K = TypeVar("K", bound=Hashable)


def sync(device: torch.device) -> None:
    """Timings must include the kernels queued on a GPU, not just their launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(variants: Mapping[K, Callable[[], object]], rounds: int, device: torch.device
                        ) -> dict[K, float]:
    """The median seconds of one call of each variant, the variants interleaved round by round (so a
    noisy neighbour slows them all alike) after one warm-up round that is not timed."""
    times: dict[K, list[float]] = {name: [] for name in variants}
    for rnd in range(rounds + 1):
        for name, call in variants.items():
            sync(device)
            start = time.perf_counter()
            call()
            sync(device)
            if rnd:  # round 0 warms up (oneDNN primitive creation, the allocator)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """The rows (one dict each) as a CSV file, its folder created; the columns are every row's keys in the
    order first seen, empty where a row lacks one (a resumed curve's rows from before a new column)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)), restval="")
        writer.writeheader()
        writer.writerows(rows)


def append_csv_row(path: str | Path, row: dict[str, Any], fieldnames: tuple[str, ...]) -> None:
    """One more row of a CSV that grows across invocations (its header written when the file is new)."""
    path = Path(path)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        if new:
            writer.writeheader()
        writer.writerow(row)


PAIR_KEYS = ("condition", "target", "kp_condition", "kp_target")


def stacked_pairs(dataset: Any, n: int | None = None) -> dict[str, torch.Tensor]:
    """The first ``n`` (default: all) items of a ``PairDataset`` as one batch of tensors."""
    items = [dataset[i] for i in range(len(dataset) if n is None else n)]
    return {k: torch.stack([it[k] for it in items]) for k in PAIR_KEYS}


# ----------------------------------------------------------------------------- searches over pipeline variants

def variant_config(out: str | Path, seed: int, *overrides: str) -> Any:
    """The pipeline config of one measured run of a variant search: one torch thread (``reid.threads=1``,
    so that two invocations share two cores), no progress bars, no generator evaluation; ``overrides``
    (the script's, then the variant's) win."""
    from pipelines.config import load_pipeline_config

    return load_pipeline_config(f"out={out}", f"seed={seed}", "evaluate_generator=false", "reid.threads=1",
                                "reid.progress=false", *overrides)


def variant_parser(description: str, *, noun: str, out: str) -> argparse.ArgumentParser:
    """The command line of a search over pipeline variants: the variant's name and its pipeline ``key=value``
    overrides, the folder of the shared stage cache and of the CSV and PNG, and ``--plot-only``; the
    script adds its own options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="", help=f"name of the {noun} (a CSV row label)")
    parser.add_argument("overrides", nargs="*", help=f"pipeline key=value overrides of this {noun}")
    parser.add_argument("--out", default=out, help=f"pipeline out= (cache shared by {noun}s) and CSV/PNG")
    parser.add_argument("--plot-only", action="store_true", help="only redraw the PNG from the CSV")
    return parser


def variant_command(parser: argparse.ArgumentParser, *, csv_name: str, fields: tuple[str, ...],
                    measure: Callable[[argparse.Namespace, Path], Iterable[dict[str, Any]]],
                    plot: Callable[[Path, Path], None], log_level: int = logging.INFO) -> None:
    """Run a variant search's command: ``measure(args, out)`` yields the named variant's rows, each appended
    to ``out/csv_name`` (a CSV that grows across invocations) and printed as it comes; then ``plot``
    redraws the PNG beside it from every row so far (only that with ``--plot-only``)."""
    args = parser.parse_args()
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png = out / csv_name, (out / csv_name).with_suffix(".png")
    if not args.plot_only:
        if not args.variant:
            parser.error("--variant NAME is required (or --plot-only)")
        for row in measure(args, out):
            append_csv_row(csv_path, row, fields)
            print(json.dumps(row), flush=True)
    plot(csv_path, png)
    print(f"{csv_path}, {png}")


def variant_axes(csv_path: Path, *, inches_per_variant: float, min_inches: float) -> tuple[Any, Any, Any, list[str]]:
    """A variant search's table and a figure with one x position per variant (in the CSV's order):
    ``(table, figure, axes, variants)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.read_csv(csv_path)
    variants = list(dict.fromkeys(table["variant"]))
    fig, ax = plt.subplots(figsize=(max(min_inches, inches_per_variant * len(variants)), 4))
    return table, fig, ax, variants


def save_variant_axes(fig: Any, ax: Any, variants: list[str], png: Path, *, ylabel: str, title: str) -> None:
    """Label the variants under their positions, then the axis, the title and the legend; write the PNG."""
    ax.set_xticks(range(len(variants)), variants, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
