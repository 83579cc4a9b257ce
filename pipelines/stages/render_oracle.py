"""Stage 4 of the ``oracle`` method: the synthesis plan (same conditions as the generators and the copy
control get), with each missing image re-rendered by SynthMarket's own renderer from the condition's
person and camera and the missing image's shot (``synthmarket.oracle``). It is pona's ceiling:
``oracle`` - ``pona`` is what a better generator could still add, ``full`` - ``oracle`` what the
missing images' cameras add. Its own cache entry (kind ``render_oracle``), never the generators'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.oracle import oracle_control
from pipelines import methods
from pipelines.config import PipelineConfig
from pipelines.stages import Instance, same, synthesize
from synthmarket.dataset import GENERATOR_VERSION
from synthmarket.oracle import ORACLE_VERSION, RENDERER, Oracle


def instances(cfg: PipelineConfig) -> list[Instance]:
    oracle = methods.TABLE["oracle"]
    return [Instance(oracle.fills, same("prepare_data", "subsample"))] if oracle in methods.filling(cfg) else []


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    planned = {k: v for k, v in synthesize.inputs(cfg).items() if k != "precision"}  # no generator runs
    return {**planned, "control": "oracle", "renderer_version": GENERATOR_VERSION, "oracle_version": ORACLE_VERSION}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    plan, _, images = synthesize.synthesis_plan(cfg, deps)
    oracle = Oracle(deps["prepare_data"]["root"])
    manifest = oracle_control(plan, oracle.jpeg, images_dir=images, out_dir=folder / "images", renderer=RENDERER,
                              seed=cfg.seed)
    return {**synthesize.write_manifest(folder, manifest), "renderer": RENDERER}


verify = synthesize.verify
