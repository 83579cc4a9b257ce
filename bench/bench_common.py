"""What the benchmark scripts share: waiting for the device, and writing their rows as CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch


def sync(device: torch.device) -> None:
    """Timings must include the kernels queued on a GPU, not just their launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
