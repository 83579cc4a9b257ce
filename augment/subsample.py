"""Keep a portion p of each identity's training images; the rest are the 'missing' images that the
generator re-synthesises (paper Section IV-D, step 1).

Rounding rule: an identity with n training images keeps k = max(1, floor(p * n + 0.5)) of them
(round half up, never fewer than one, all of them at p = 1). Which ones is decided by a random
permutation seeded by (seed, identity), and the first k are kept: so the choice for one identity
does not depend on the others, and for one seed the kept sets are nested across portions
(kept at p = 0.2 is a subset of kept at p = 0.4), which makes a sweep over p a controlled one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def kept_count(n_images: int, portion: float) -> int:
    """How many of an identity's ``n_images`` are kept at ``portion`` (the documented rounding rule)."""
    return min(n_images, max(1, math.floor(portion * n_images + 0.5)))


def check_portion(portion: float) -> float:
    """Portions live in (0, 1]; anything else is an error that says so before any work starts."""
    if isinstance(portion, bool) or not isinstance(portion, (int, float)) or not 0 < portion <= 1:
        raise ValueError(f"portion must be a number in (0, 1] (the fraction of training images kept), got {portion!r}")
    return float(portion)


def subsample(index: pd.DataFrame, portion: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the training rows of a Market index into (kept, missing) manifests.

    ``index`` is a table from ``reid.market_index.index_market`` (other splits are ignored, so query
    and gallery identities can never enter training). Both outputs keep the index's columns plus
    ``portion`` and ``seed``, sorted by file name.
    """
    portion = check_portion(portion)
    train = index[index["split"] == "train"]
    if train.empty:
        raise ValueError("the index has no training images (split == 'train'); index the dataset with its "
                         "bounding_box_train folder")
    not_normal = train[train["kind"] != "normal"]
    if not not_normal.empty:
        raise ValueError(f"{len(not_normal)} training images are distractors or junk (e.g. "
                         f"{not_normal['name'].iloc[0]}); a Market training split holds only real identities")
    keep = np.zeros(len(train), dtype=bool)
    positions = {pid: np.flatnonzero(train["identity"].to_numpy() == pid) for pid in sorted(train["identity"].unique())}
    names = train["name"].to_numpy()
    for pid, rows in positions.items():
        rows = rows[np.argsort(names[rows], kind="stable")]  # independent of the index's row order
        order = np.random.default_rng([seed, int(pid)]).permutation(len(rows))
        keep[rows[order[: kept_count(len(rows), portion)]]] = True
    out = train.assign(portion=portion, seed=seed)
    kept = out[keep].sort_values("name").reset_index(drop=True)
    missing = out[~keep].sort_values("name").reset_index(drop=True)
    return kept, missing
