"""Stage 2: keep a portion of each identity's training images (``augment.subsample``); writes the
kept and missing manifests (``pipelines.stage_tables``: read them with ``read_table``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.subsample import subsample
from pipelines.config import PipelineConfig
from pipelines.stage_tables import write_table
from pipelines.stages import Instance, same
from reid.market_index import index_market


def instances(cfg: PipelineConfig) -> list[Instance]:
    return [Instance("subsample", same("prepare_data"))]


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    return {"portion": cfg.portion, "seed": cfg.seed}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    index = index_market(deps["prepare_data"]["root"], splits=("train",), progress=False)
    kept, missing = subsample(index, cfg.portion, cfg.seed)
    for name, table in (("kept", kept), ("missing", missing)):  # image paths relative to the CSV
        write_table(table, folder / f"{name}.csv")
    return {"kept": str(folder / "kept.csv"), "missing": str(folder / "missing.csv"), "n_kept": len(kept),
            "n_missing": len(missing), "n_identities": int(kept["identity"].nunique())}
