"""Stage 4 of the ``copy`` control: the synthesis plan (same conditions as the generators get), with
each condition image copied in place of a generated one (``augment.copy_control``). What the
generated images add beyond more optimiser steps on the kept images is ``pona`` - ``copy``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment import copy_control
from pipelines import methods
from pipelines.config import PipelineConfig
from pipelines.stages import Instance, same, synthesize

# Its outputs are a synthesis folder and manifest, cached under the synthesis stage's kind (as before
# this stage had a module of its own, so existing caches stay valid).
KIND = "synthesize"


def instances(cfg: PipelineConfig) -> list[Instance]:
    copy = methods.TABLE["copy"]
    return [Instance(copy.fills, same("prepare_data", "subsample"))] if copy in methods.filling(cfg) else []


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    planned = {k: v for k, v in synthesize.inputs(cfg).items() if k != "precision"}  # no generator runs
    return {**planned, "control": "copy_condition"}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    plan, _, images = synthesize.synthesis_plan(cfg, deps)
    return synthesize.write_manifest(folder, copy_control(plan, images_dir=images, out_dir=folder / "images", seed=cfg.seed))


verify = synthesize.verify
