"""Stage 2: keep a portion of each identity's training images (``augment.subsample``); writes the
kept and missing manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.subsample import subsample
from pipelines.config import PipelineConfig
from pipelines.stages import Instance, same
from reid.market_index import index_market
from runtime.atomic import atomic_path


def instances(cfg: PipelineConfig) -> list[Instance]:
    return [Instance("subsample", same("prepare_data"))]


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    return {"portion": cfg.portion, "seed": cfg.seed}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    index = index_market(deps["prepare_data"]["root"], splits=("train",), progress=False)
    kept, missing = subsample(index, cfg.portion, cfg.seed)
    for name, table in (("kept", kept), ("missing", missing)):
        with atomic_path(folder / f"{name}.csv") as tmp:
            table.to_csv(tmp, index=False)
    return {"kept": str(folder / "kept.csv"), "missing": str(folder / "missing.csv"), "n_kept": len(kept),
            "n_missing": len(missing), "n_identities": int(kept["identity"].nunique())}
