"""Stage 4 of the ``copy`` control: the synthesis plan (same conditions as the generators get), with
each condition image copied in place of a generated one (``augment.copy_control``). What the
generated images add beyond more optimiser steps on the kept images is ``pona`` - ``copy``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augment import copy_control
from pipelines.config import PipelineConfig
from pipelines.stages import synthesize as synthesis

# Its outputs are a synthesis folder and manifest, cached under the synthesis stage's kind (as before
# this stage had a module of its own, so existing caches stay valid).
KIND = "synthesize"
Result = synthesis.Result  # a synthesis folder and manifest, read by the merge as any other
verify = synthesis.verify


@dataclass(frozen=True, kw_only=True)
class Settings(synthesis.Plan):
    """The plan alone: no generator runs (so no precision)."""

    control: str = "copy_condition"


def settings(cfg: PipelineConfig) -> Settings:
    return Settings(**synthesis.plan_settings(cfg))


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    plan, _, images = synthesis.synthesis_plan(settings, deps)
    manifest = copy_control(plan, images_dir=images, out_dir=folder / "images", seed=settings.seed)
    return Result(**synthesis.write_manifest(folder, manifest))
