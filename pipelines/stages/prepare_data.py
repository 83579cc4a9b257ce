"""Stage 1: the dataset. SynthMarket is rendered into the stage folder; a local Market-1501 copy is
validated (layout, names, disjoint identities) and, when its training images have no PATN
annotation CSV, annotated with the offline pose estimator."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.stage_cache import file_digest
from pipelines.stages import Instance
from reid.market_index import index_market, resolve_root
from reid.synthmarket import generate_synthmarket

ANNOTATION_TRAIN = "market-annotation-train.csv"


def market_root(cfg: PipelineConfig) -> Path:
    return resolve_root(cfg.data.root).absolute()


def market_annotations(cfg: PipelineConfig) -> Path:
    return Path(cfg.data.annotations).absolute() if cfg.data.annotations else market_root(cfg) / ANNOTATION_TRAIN


def _absolute(path: str) -> str:
    """Given file paths as absolute strings ('' stays ''): later stages join paths to data.root."""
    return str(Path(path).absolute()) if path else ""


def instances(cfg: PipelineConfig) -> list[Instance]:
    return [Instance("prepare_data")]


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    if cfg.data.dataset == "synthmarket":
        return {"dataset": "synthmarket", "synthmarket": cfg.data.synthmarket.content()}
    ann = market_annotations(cfg)
    cache = Path(cfg.out) / "cache"
    test_files = {k: _absolute(getattr(cfg.data, k)) for k in ("test_annotations", "test_pairs")}
    return {"dataset": "market1501", "root": str(market_root(cfg)), "annotations": str(ann),
            "annotations_sha256": file_digest(ann, cache), **test_files,
            **{f"{k}_sha256": file_digest(v, cache) if v else None for k, v in test_files.items()}}


def check(cfg: PipelineConfig) -> None:
    """Cheap checks that must fail before any expensive stage starts."""
    if cfg.data.dataset == "market1501":
        if not cfg.data.root:
            raise ValueError("dataset=market1501 needs data.root=/path/to/Market-1501-v15.09.15")
        index_market(cfg.data.root, progress=False)  # layout, names, disjoint identities


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    if cfg.data.dataset == "synthmarket":
        root = folder / "dataset"
        generate_synthmarket(root, dataclasses.replace(cfg.data.synthmarket, out=str(root)))
        return {"root": str(root), "annotations": str(root / ANNOTATION_TRAIN),
                "test_annotations": str(root / "market-annotation-test.csv"),
                "test_pairs": str(root / "market-pairs-test.csv")}
    root = market_root(cfg)
    annotations = market_annotations(cfg)
    if not annotations.exists():
        from pona_model.poses import EstimatorFactory, annotate_folder

        annotations = folder / ANNOTATION_TRAIN
        annotate_folder(root / "bounding_box_train", annotations, estimator_factory=EstimatorFactory(),
                        workers=max(1, cfg.dask.workers))
    return {"root": str(root), "annotations": str(annotations),
            "test_annotations": _absolute(cfg.data.test_annotations), "test_pairs": _absolute(cfg.data.test_pairs)}


def verify(result: dict[str, Any]) -> None:
    """A rendered SynthMarket holds the images its synthmarket.json counts."""
    info = Path(result["root"]) / "synthmarket.json"
    if not info.is_file():
        return
    counts = json.loads(info.read_text(encoding="utf-8"))["counts"]
    train = sum(1 for _ in (Path(result["root"]) / "bounding_box_train").glob("*.jpg"))
    if train != counts["train_images"]:
        raise RuntimeError(f"{info.parent} holds {train} training images, synthmarket.json says "
                           f"{counts['train_images']}")
