"""Stage 7: evaluate one re-ID model on the dataset's query and gallery by the Market-1501 protocol
(``reid.evaluate.evaluate_checkpoint``: mAP and CMC, torchreid's AP by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines import methods
from pipelines.config import PipelineConfig
from pipelines.stages import Instance
from reid.evaluate import evaluate_checkpoint


def instances(cfg: PipelineConfig) -> list[Instance]:
    """One per re-ID training of the run (methods sharing a training share its evaluation)."""
    owners = {methods.evaluation(cfg, m): t for m, t in methods.trainings(cfg).items()}
    return [Instance(name, {"train_reid": t, "prepare_data": "prepare_data"}) for name, t in owners.items()]


def settings(cfg: PipelineConfig) -> dict[str, Any]:
    """What the stage passes to ``evaluate_checkpoint`` that moves the numbers; its fingerprint is
    exactly this, so a changed setting re-evaluates (the device is a run-only key)."""
    return {"ap": "torchreid", "flip": True, "precision": cfg.reid.precision}


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    return settings(cfg)


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    result = evaluate_checkpoint(deps["train_reid"]["checkpoint"], deps["prepare_data"]["root"], device=cfg.device,
                                 out=folder / "metrics.json", **settings(cfg))
    keep = ("mAP", "rank1", "rank5", "rank10", "ap_definition", "n_queries", "n_queries_skipped", "weights_init",
            "epoch", "epochs", "precision", "train_precision", "notes")
    return {k: result[k] for k in keep if k in result} | {"metrics": str(folder / "metrics.json")}
