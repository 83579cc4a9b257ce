"""Which pairs are scored when only some are (``metrics.max_pairs`` and the other ``*_max_*`` keys): a
seeded random subset, so the same settings score the same pairs, and the caller can generate only those."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pona_model.generate import output_name

SELECTION_SEED = 0


def subset(n: int, k: int, seed: int = SELECTION_SEED) -> np.ndarray:
    """Sorted indices of a seeded random k-subset of range(n) (all of them when k is 0 or >= n)."""
    if k == 0 or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def select_pairs(pairs: pd.DataFrame, max_pairs: int = 0) -> pd.DataFrame:
    """The rows of a pairs table that ``evaluate_folder`` scores with ``metrics.max_pairs``: sorted by
    pair name, then a seeded random subset of ``max_pairs`` (all when 0). Generate these first."""
    order = np.argsort([output_name(a, b) for a, b in zip(pairs["from"], pairs["to"])], kind="stable")
    rows = pairs.iloc[order]
    return rows.iloc[subset(len(rows), max_pairs)].reset_index(drop=True)

