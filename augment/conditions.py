"""Choose, for each missing image, the kept image of the same identity that the generator starts from
(paper Section IV-D, step 2: a kept image as condition, the missing image's pose as target).

Policies:
- ``random``: a uniformly drawn kept image of the identity, as in the paper.
- ``same_camera``: a random kept image from the missing image's camera when one exists (same light,
  background and colour cast, which the generator cannot change), else ``random``.
- ``closest_pose``: the kept image whose pose is nearest the target pose (mean distance between the
  joints visible in both, after centring on the visible joints and scaling by the image height),
  so the generator has to move the body least; ties and unusable poses fall back to ``random``.
Each choice draws from a generator seeded by (seed, missing image name), so it does not depend on
the order of the rows or on which other images are missing.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

POLICIES = ("random", "same_camera", "closest_pose")


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def pose_distance(a: np.ndarray, b: np.ndarray, height: float) -> float:
    """Mean distance, in image heights, between the joints visible in both poses after centring
    each pose on those joints; infinity when fewer than 4 joints are shared."""
    both = (a >= 0).all(1) & (b >= 0).all(1)
    if both.sum() < 4:
        return float("inf")
    pa, pb = a[both].astype(float), b[both].astype(float)
    pa -= pa.mean(0)
    pb -= pb.mean(0)
    return float(np.linalg.norm(pa - pb, axis=1).mean() / height)


def select_conditions(missing: pd.DataFrame, kept: pd.DataFrame, policy: str = "random", seed: int = 0,
                      keypoints: Mapping[str, np.ndarray] | None = None, height: float = 128.0) -> pd.DataFrame:
    """Return ``missing`` with a ``condition`` column (a kept image name of the same identity) and
    ``condition_policy``. Every identity of ``missing`` must have at least one kept image (which
    ``augment.subsample`` guarantees)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown condition policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if policy == "closest_pose" and keypoints is None:
        raise ValueError("condition policy closest_pose needs the training keypoints (an annotation CSV)")
    by_id = {pid: group for pid, group in kept.groupby("identity")}
    orphans = sorted(set(missing["identity"]) - set(by_id))
    if orphans:
        raise ValueError(f"{len(orphans)} identities have missing images but no kept image (e.g. {orphans[:5]}); "
                         "build kept/missing with augment.subsample, which keeps at least one per identity")
    chosen = []
    for row in missing.itertuples(index=False):
        group = by_id[row.identity]
        rng = _rng(seed, row.name)
        candidates = group
        if policy == "same_camera":
            same = group[group["camera"] == row.camera]
            candidates = same if len(same) else group
        elif policy == "closest_pose":
            target = keypoints.get(row.name)
            if target is not None:
                dist = np.array([pose_distance(np.asarray(keypoints[n]), np.asarray(target), height)
                                 if n in keypoints else np.inf for n in group["name"]])
                if np.isfinite(dist).any():
                    candidates = group[dist == dist.min()]
        names = sorted(candidates["name"])
        chosen.append(names[int(rng.integers(len(names)))])
    return missing.assign(condition=chosen, condition_policy=policy)
