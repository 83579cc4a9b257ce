"""Auxiliary SynthMarket identities: people who appear in neither the train nor the test split of a
SynthMarket dataset, seen by the same six cameras, rendered into a folder of their own.

They play the role that ImageNet (for the re-ID trunk) and other people's photographs (for the
generator) play for real data: something to pretrain on that shares no identity with the experiment.
The dataset's own plan is never touched: every random decision here is keyed by the auxiliary
person's own key (``AUX_BASE + k``, between the identity numbers and the distractor keys), so the
default train / query / gallery images stay byte-identical whether or not this set exists, and no
auxiliary person shares an appearance seed with anyone in the dataset. File names carry Market
numbers that no train or test identity uses.

The folder is in Market layout for both consumers: ``bounding_box_train/`` (re-ID pretraining,
``index_market(root, splits=("train",))``), PATN's ``market-annotation-train.csv`` and
``market-pairs-train.csv`` (generator training with ``data.root`` = the folder), ``manifest.csv``,
and ``auxiliary.json`` written last (its presence means the folder is complete).

  python -m synthmarket.auxiliary out=data/synthmarket-aux n_ids=400
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from poseformats.annotations import build_pairs, write_annotations, write_pairs
from poseformats.keypoints import MISSING, has_torso
from runtime.atomic import atomic_path, atomic_write_text
from runtime.config import entry_point, param, parse_config, to_dict
from runtime.errors import ConfigError
from synthmarket.config import SynthMarketConfig
from synthmarket.dataset import (
    DISTRACTOR_BASE,
    GENERATOR_VERSION,
    PARTIAL,
    SPLIT_DIRS,
    Job,
    Plan,
    _appearances,
    _cameras_of,
    _claim,
    _identities,
    _name_jobs,
    _remove_strays,
    _render_all,
)

# Appearance / track keys of auxiliary people: between the identity numbers (< 10000) and the distractor
# keys (DISTRACTOR_BASE = 20000); keys from JUNK_BASE on would be rendered as background boxes.
AUX_BASE = 10000
AUX_SPLIT_CODE = 4  # look-alike groups of the auxiliary people (1 train, 2 test in the dataset's plan)
MARKER = "auxiliary.json"
ANNOTATIONS = "market-annotation-train.csv"
PAIRS = "market-pairs-train.csv"


@dataclass
class AuxiliaryConfig:
    out: str = param("data/synthmarket-aux", "folder to write (Market layout: bounding_box_train + PATN CSVs)")
    n_ids: int = param(400, "auxiliary identities (none of them in the dataset's train or test split)")
    synthmarket: SynthMarketConfig = field(default_factory=SynthMarketConfig, metadata={
        "help": "the dataset whose identities are avoided and whose cameras and difficulty knobs are used"})

    def __post_init__(self) -> None:
        if self.n_ids < 1:
            raise ConfigError("n_ids must be >= 1")


def auxiliary_numbers(cfg: SynthMarketConfig, n_ids: int) -> list[int]:
    """Market identity numbers for ``n_ids`` auxiliary people: the smallest ones in 1..9999 that the
    dataset's train and test identities do not use."""
    train, test = _identities(cfg)
    used = set(train) | set(test)
    free = [i for i in range(1, 10000) if i not in used]
    if n_ids > len(free):
        raise ConfigError(f"n_ids={n_ids}: only {len(free)} Market identity numbers are left beside the dataset's "
                          f"{len(used)}")
    assert AUX_BASE + n_ids <= DISTRACTOR_BASE  # 9999 numbers at most, so the keys never meet the distractors'
    return free[:n_ids]


def make_auxiliary_plan(cfg: SynthMarketConfig, n_ids: int) -> Plan:
    """Every auxiliary image job, each person's cameras and frames drawn as the dataset draws its own."""
    numbers = auxiliary_numbers(cfg, n_ids)
    keys = [AUX_BASE + k for k in range(n_ids)]
    appearances, groups = _appearances(cfg, keys, AUX_SPLIT_CODE)
    jobs: list[Job] = []
    for number, key in zip(numbers, keys):
        for cam, count in _cameras_of(cfg, key).items():
            jobs += [Job("train", "person", number, key, cam, i) for i in range(count)]
    return Plan(numbers, [], appearances, groups, _name_jobs(cfg, jobs))


def _check_existing(root: Path, cfg: SynthMarketConfig, n_ids: int) -> pd.DataFrame | None:
    marker = root / MARKER
    if not marker.is_file():
        return None
    info = json.loads(marker.read_text(encoding="utf-8"))
    if info.get("content") != cfg.content() or info.get("n_ids") != n_ids or info.get("version") != GENERATOR_VERSION:
        raise ConfigError(f"{root} already holds auxiliary identities made with other settings; use another out= "
                          f"or delete {root}")
    return pd.read_csv(root / "manifest.csv", dtype={"name": str, "file": str})


def generate_auxiliary(out: str | os.PathLike, cfg: SynthMarketConfig, n_ids: int) -> pd.DataFrame:
    """Render ``n_ids`` auxiliary identities of the dataset ``cfg`` into ``out`` and return their
    manifest; a finished folder with the same settings is returned as it is. Only a new or empty
    folder, or one this function marked and was interrupted in, is written to."""
    root = Path(out)
    existing = _check_existing(root, cfg, n_ids)
    if existing is not None:
        return existing
    plan = make_auxiliary_plan(cfg, n_ids)
    _claim(root)
    _remove_strays(root, plan)
    results = _render_all(cfg, plan, root)
    keypoints, rows = {}, []
    for job, kp, facts in results:
        keypoints[job.name] = kp
        rows.append({"split": "train", "file": f"{SPLIT_DIRS['train']}/{job.name}", "name": job.name,
                     "identity": job.label, "camera": job.camera, "sequence": job.sequence, "frame": job.frame,
                     "role": "auxiliary", "source": job.source, "group": plan.groups[job.source], **facts,
                     "n_visible": int((kp[:, 0] != MISSING).sum()), "has_torso": has_torso(kp),
                     "appearance": plan.appearances[job.source].summary()})
    manifest = pd.DataFrame(rows)
    write_annotations(root / ANNOTATIONS, dict(sorted(keypoints.items())))
    write_pairs(root / PAIRS, build_pairs(keypoints, n=cfg.train_pairs or None, seed=cfg.seed))
    with atomic_path(root / "manifest.csv") as tmp:
        manifest.to_csv(tmp, index=False)
    info = {"generator": "synthmarket.auxiliary", "version": GENERATOR_VERSION, "n_ids": n_ids,
            "n_images": len(manifest), "content": cfg.content(), "dataset_config": to_dict(cfg),
            "identities": [int(i) for i in plan.train_ids]}
    atomic_write_text(root / MARKER, json.dumps(info, indent=2) + "\n")
    (root / PARTIAL).unlink()
    return manifest


@entry_point("python -m synthmarket.auxiliary")
def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(AuxiliaryConfig, argv, prog="python -m synthmarket.auxiliary", description=__doc__)
    try:
        manifest = generate_auxiliary(cfg.out, cfg.synthmarket, cfg.n_ids)
    except (ConfigError, ValueError) as exc:
        print(f"python -m synthmarket.auxiliary: error: {exc}", file=sys.stderr)
        return 2
    print(f"{cfg.n_ids} auxiliary identities, {len(manifest)} images in {cfg.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
