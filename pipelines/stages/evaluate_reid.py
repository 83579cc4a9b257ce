"""Stage 7: evaluate one re-ID model on the dataset's query and gallery by the Market-1501 protocol
(``reid.evaluate.evaluate_checkpoint``: mAP and CMC, torchreid's AP by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from reid.evaluate import evaluate_checkpoint


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    return {"ap": "torchreid", "flip": True, "precision": cfg.reid.precision}


def run(folder: Path, cfg: PipelineConfig, checkpoint: str, root: str) -> dict[str, Any]:
    result = evaluate_checkpoint(checkpoint, root, device=cfg.device, precision=cfg.reid.precision,
                                 out=folder / "metrics.json")
    keep = ("mAP", "rank1", "rank5", "rank10", "ap_definition", "n_queries", "n_queries_skipped", "weights_init",
            "epoch", "epochs", "precision", "train_precision", "notes")
    return {k: result[k] for k in keep if k in result} | {"metrics": str(folder / "metrics.json")}
