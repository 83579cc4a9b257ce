"""Stage 1: the dataset. SynthMarket is rendered into the stage folder; a local Market-1501 copy is
validated (layout, names, disjoint identities) and, when its training images have no PATN
annotation CSV, annotated with the offline pose estimator."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import PipelineConfig
from pipelines.stage_cache import file_digest
from pipelines.stage_names import PREPARE_DATA
from pipelines.stages import Instance, StageOutput, StageSettings, run_only
from reid.market_index import index_market, resolve_root
from synthmarket import generate_synthmarket
from synthmarket.config import SynthMarketConfig
from synthmarket.dataset import PARTIAL

ANNOTATION_TRAIN = "market-annotation-train.csv"
SYNTHMARKET_TABLES = (ANNOTATION_TRAIN, "market-annotation-test.csv", "market-pairs-train.csv", "market-pairs-test.csv")

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Rendered(StageSettings):
    """SynthMarket, rendered here: its bytes follow from its settings."""

    dataset: str = "synthmarket"
    synthmarket: SynthMarketConfig


@dataclass(frozen=True, kw_only=True)
class Local(StageSettings):
    """A local Market-1501 copy: where it is, and the annotation and test files by path and content."""

    dataset: str = "market1501"
    root: str
    annotations: str
    annotations_sha256: str | None
    test_annotations: str
    test_pairs: str
    test_annotations_sha256: str | None
    test_pairs_sha256: str | None
    workers: int = run_only()  # pose-estimator processes when the training images need annotating


Settings = Rendered | Local


@dataclass(frozen=True, kw_only=True)
class Result(StageOutput):
    """``content``: what a local dataset held when it was recorded (``images_digest``; None when rendered)."""

    root: str
    annotations: str
    test_annotations: str = ""
    test_pairs: str = ""
    content: dict[str, Any] | None = field(default=None)


def market_root(cfg: PipelineConfig) -> Path:
    return resolve_root(cfg.data.root).absolute()


def market_annotations(cfg: PipelineConfig) -> Path:
    return Path(cfg.data.annotations).absolute() if cfg.data.annotations else market_root(cfg) / ANNOTATION_TRAIN


def _absolute(path: str) -> str:
    """Given file paths as absolute strings ('' stays ''): later stages join paths to data.root."""
    return str(Path(path).absolute()) if path else ""


def settings(cfg: PipelineConfig) -> Settings:
    if cfg.data.dataset == "synthmarket":
        return Rendered(synthmarket=cfg.data.synthmarket)
    ann = market_annotations(cfg)
    cache = Path(cfg.out) / "cache"
    test_annotations, test_pairs = _absolute(cfg.data.test_annotations), _absolute(cfg.data.test_pairs)
    return Local(root=str(market_root(cfg)), annotations=str(ann), annotations_sha256=file_digest(ann, cache),
                 test_annotations=test_annotations, test_pairs=test_pairs,
                 test_annotations_sha256=file_digest(test_annotations, cache) if test_annotations else None,
                 test_pairs_sha256=file_digest(test_pairs, cache) if test_pairs else None,
                 workers=max(1, cfg.dask.workers))


def instances(cfg: PipelineConfig) -> list[Instance]:
    return [Instance(PREPARE_DATA, settings(cfg))]


def check(cfg: PipelineConfig) -> None:
    """Cheap checks that must fail before any expensive stage starts."""
    if cfg.data.dataset == "market1501":
        if not cfg.data.root:
            raise ValueError("dataset=market1501 needs data.root=/path/to/Market-1501-v15.09.15")
        index_market(cfg.data.root, progress=False)  # layout, names, disjoint identities


def reopen_incomplete(root: Path, marker: str, tables: tuple[str, ...]) -> bool:
    """A finished SynthMarket root (``marker`` written) in a stage folder that lost a file (the stage
    cache removed a damaged one) is marked unfinished again, so the generator renders it anew (the same
    bytes) instead of returning it as it is. Only the stage's own folder is touched. ``tables``: the CSV
    files the root holds beside ``manifest.csv``. Returns whether it was reopened."""
    if not (root / marker).is_file():
        return False
    wanted = [root / name for name in ("manifest.csv", *tables)]
    if wanted[0].is_file():
        wanted += [root / name for name in pd.read_csv(wanted[0], usecols=["file"])["file"]]
    if all(path.is_file() for path in wanted):
        return False
    log.warning("%s lost files since it was finished: rendering it again", root)
    (root / PARTIAL).touch()
    (root / marker).unlink()
    return True


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    if isinstance(settings, Rendered):
        root = folder / "dataset"
        reopen_incomplete(root, "synthmarket.json", SYNTHMARKET_TABLES)
        generate_synthmarket(root, dataclasses.replace(settings.synthmarket, out=str(root)))
        return Result(root=str(root), annotations=str(root / ANNOTATION_TRAIN),
                      test_annotations=str(root / "market-annotation-test.csv"),
                      test_pairs=str(root / "market-pairs-test.csv"))
    root = Path(settings.root)
    annotations = Path(settings.annotations)
    if not annotations.exists():
        from poseformats.estimate import EstimatorFactory, annotate_folder

        annotations = folder / ANNOTATION_TRAIN
        annotate_folder(root / "bounding_box_train", annotations, estimator_factory=EstimatorFactory(),
                        workers=settings.workers)
    return Result(root=str(root), annotations=str(annotations), test_annotations=settings.test_annotations,
                  test_pairs=settings.test_pairs, content=images_digest(root))


MARKET_SPLITS = ("bounding_box_train", "bounding_box_test", "query")


def images_digest(root: Path) -> dict[str, Any]:
    """What a user's dataset outside the run folder held when the stage was recorded: the number of
    images and a SHA-256 over their split, name and size (one ``stat`` each, no image read)."""
    h, n = hashlib.sha256(), 0
    for split in MARKET_SPLITS:
        if (root / split).is_dir():
            with os.scandir(root / split) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if entry.is_file():
                        h.update(f"{split}/{entry.name}\t{entry.stat().st_size}\n".encode())
                        n += 1
    return {"images": n, "sha256": h.hexdigest()}


def stale(result: Result) -> str | None:
    """Why a recorded stage over a user's dataset must not be reused: its images changed in place
    since (names or sizes). Every later stage would read other images than it was computed from, so the
    run is refused with the way out rather than redone half."""
    if result.content is None:
        return None
    now = images_digest(Path(result.root))
    if now == result.content:
        return None
    return (f"the images under {result.root} changed since this stage was recorded ({result.content['images']} "
            f"images then, {now['images']} now, or other sizes): its results and every stage after it were computed "
            "from the old ones; restore them, or use another out= to compute everything from the new ones")


def verify(result: Result) -> None:
    """A rendered SynthMarket holds the images its synthmarket.json counts."""
    info = Path(result.root) / "synthmarket.json"
    if not info.is_file():
        return
    counts = json.loads(info.read_text(encoding="utf-8"))["counts"]
    train = sum(1 for _ in (Path(result.root) / "bounding_box_train").glob("*.jpg"))
    if train != counts["train_images"]:
        raise RuntimeError(f"{info.parent} holds {train} training images, synthmarket.json says "
                           f"{counts['train_images']}")
