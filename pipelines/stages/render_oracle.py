"""Stage 4 of the ``oracle`` method: the synthesis plan (same conditions as the generators and the copy
control get), with each missing image re-rendered by SynthMarket's own renderer from the condition's
person and camera and the missing image's shot (``synthmarket.oracle``). It is pona's ceiling:
``oracle`` - ``pona`` is what a better generator could still add, ``full`` - ``oracle`` what the
missing images' cameras add. Its own cache entry (kind ``render_oracle``), never the generators'."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augment.oracle import oracle_control
from pipelines.config import PipelineConfig
from pipelines.stages import synthesize as synthesis
from synthmarket.dataset import GENERATOR_VERSION
from synthmarket.oracle import ORACLE_VERSION, RENDERER, Oracle


@dataclass(frozen=True, kw_only=True)
class Settings(synthesis.Plan):
    """The plan, and the versions of the renderer and of the oracle's use of it (no generator runs)."""

    control: str = "oracle"
    renderer_version: int = GENERATOR_VERSION
    oracle_version: int = ORACLE_VERSION


@dataclass(frozen=True, kw_only=True)
class Result(synthesis.Result):
    """``renderer``: the renderer's name and version, as the manifest's ``checkpoint`` column holds it."""

    renderer: str

    def summary(self) -> Any:
        return {"counts": self.counts, "renderer": self.renderer}


def settings(cfg: PipelineConfig) -> Settings:
    return Settings(**synthesis.plan_settings(cfg))


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    plan, _, images = synthesis.synthesis_plan(settings, deps)
    oracle = Oracle(deps["prepare_data"].root)
    manifest = oracle_control(plan, oracle.jpeg, images_dir=images, out_dir=folder / "images", renderer=RENDERER,
                              seed=settings.seed)
    return Result(**synthesis.write_manifest(folder, manifest), renderer=RENDERER)


verify = synthesis.verify
