"""Stage 2: keep a portion of each identity's training images (``augment.subsample``); writes the
kept and missing manifests (``pipelines.stage_tables``: read them with ``read_table``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augment.subsample import subsample
from pipelines.config import PipelineConfig
from pipelines.stage_names import PREPARE_DATA, SUBSAMPLE
from pipelines.stage_tables import write_table
from pipelines.stages import Instance, StageOutput, StageSettings, same
from reid.market_index import index_market


@dataclass(frozen=True, kw_only=True)
class Settings(StageSettings):
    portion: float
    seed: int


@dataclass(frozen=True, kw_only=True)
class Result(StageOutput):
    kept: str
    missing: str
    n_kept: int
    n_missing: int
    n_identities: int


def settings(cfg: PipelineConfig) -> Settings:
    return Settings(portion=cfg.portion, seed=cfg.seed)


def instances(cfg: PipelineConfig) -> list[Instance]:
    return [Instance(SUBSAMPLE, settings(cfg), same(PREPARE_DATA))]


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    index = index_market(deps["prepare_data"].root, splits=("train",), progress=False)
    kept, missing = subsample(index, settings.portion, settings.seed)
    for name, table in (("kept", kept), ("missing", missing)):  # image paths relative to the CSV
        write_table(table, folder / f"{name}.csv")
    return Result(kept=str(folder / "kept.csv"), missing=str(folder / "missing.csv"), n_kept=len(kept),
                  n_missing=len(missing), n_identities=int(kept["identity"].nunique()))
