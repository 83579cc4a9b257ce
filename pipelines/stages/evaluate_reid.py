"""Stage 7: evaluate one re-ID model on the dataset's query and gallery by the Market-1501 protocol
(``reid.evaluate.evaluate_checkpoint``: mAP and CMC, torchreid's AP by default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import plan
from pipelines.config import PipelineConfig
from pipelines.stage_names import PREPARE_DATA
from pipelines.stages import Instance, StageOutput, StageSettings, run_only
from reid.evaluate import evaluate_checkpoint


@dataclass(frozen=True, kw_only=True)
class Settings(StageSettings):
    """What the stage passes to ``evaluate_checkpoint``: its fingerprint is exactly these, less the device."""

    ap: str = "torchreid"
    flip: bool = True
    precision: str
    device: str = run_only()


@dataclass(frozen=True, kw_only=True)
class Result(StageOutput):
    """mAP and ranks in percent, with what they were measured on; ``metrics``: the full record."""

    mAP: float
    rank1: float
    rank5: float | None = None
    rank10: float | None = None
    ap_definition: str | None = None
    n_queries: int | None = None
    n_queries_skipped: int | None = None
    weights_init: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    precision: str | None = None
    train_precision: str | None = None
    notes: list[str] = field(default_factory=list)
    metrics: str = ""


def settings(cfg: PipelineConfig) -> Settings:
    return Settings(precision=cfg.reid.precision, device=cfg.device)


def instances(cfg: PipelineConfig) -> list[Instance]:
    """One per re-ID training of the run (methods sharing a training share its evaluation)."""
    owners = {plan.evaluation(cfg, m): t for m, t in plan.trainings(cfg).items()}
    return [Instance(name, settings(cfg), {"train_reid": t, "prepare_data": PREPARE_DATA}) for name, t in owners.items()]


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    result = evaluate_checkpoint(deps["train_reid"].checkpoint, deps["prepare_data"].root, device=settings.device,
                                 out=folder / "metrics.json", ap=settings.ap, flip=settings.flip,
                                 precision=settings.precision)
    return Result.from_json({**result, "metrics": str(folder / "metrics.json")})
