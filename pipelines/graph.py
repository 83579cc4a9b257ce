"""The stages of one run as a graph: each stage has a fingerprint computed from the config alone
(its own settings plus its upstream stages' fingerprints), so the whole graph is known before
anything runs, a rerun finds finished stages, and runs of a sweep that share a stage (the dataset,
a generator trained on the full set, the full-data re-ID model) share one folder and run it once.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.stage_cache import StageResult, fingerprint, run_stage
from pipelines.stages import (
    copy_conditions,
    evaluate_generator,
    evaluate_reid,
    merge,
    prepare_auxiliary,
    prepare_data,
    pretrain_reid,
    render_oracle,
    subsample,
    synthesize,
    train_generator,
    train_reid,
)
from pipelines.validate import check_config

# The stage modules in an order in which every stage's upstream stages come first.
MODULES: tuple[ModuleType, ...] = (prepare_data, subsample, prepare_auxiliary, pretrain_reid, train_generator,
                                   synthesize, copy_conditions, render_oracle, merge, train_reid, evaluate_reid,
                                   evaluate_generator)


@dataclass(frozen=True)
class Stage:
    """One stage instance of a run: ``name`` is unique within the run (``train_reid[pona]``); ``kind``
    names its module and cache folder; ``roles`` maps what the module reads to the upstream stage
    names (``deps``, in fingerprint order)."""

    name: str
    kind: str
    key: str
    inputs: dict[str, Any]
    roles: dict[str, str]
    module_name: str  # by name, so a stage travels to a dask worker as plain data
    cfg: PipelineConfig

    @property
    def deps(self) -> tuple[str, ...]:
        return tuple(self.roles.values())

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def body(self, folder: Path, deps: dict[str, Any]) -> dict[str, Any]:
        """``deps``: the upstream results by role."""
        return self.module.run(folder, self.cfg, deps)


def kind_of(module: ModuleType) -> str:
    return getattr(module, "KIND", module.__name__.rsplit(".", 1)[-1])


def build_stages(cfg: PipelineConfig) -> dict[str, Stage]:
    """The run's stages, from each stage module's declared instances, in an order that respects
    dependencies; each fingerprint is the stage's inputs and its upstream stages' fingerprints."""
    stages: dict[str, Stage] = {}
    for module in MODULES:
        for instance in module.instances(cfg):
            view = instance.cfg if instance.cfg is not None else cfg
            unknown = [d for d in instance.deps.values() if d not in stages]
            if unknown or instance.name in stages:
                raise RuntimeError(f"stage {instance.name}: upstream {unknown} not declared before it, or declared twice")
            kind, inputs = kind_of(module), module.inputs(view)
            key = fingerprint(kind, inputs, [stages[d].key for d in instance.deps.values()])
            stages[instance.name] = Stage(instance.name, kind, key, inputs, dict(instance.deps), module.__name__, view)
    return stages


def execute(stage: Stage, cache_root: str | Path, upstream: dict[str, Any]) -> StageResult:
    """Run (or find) ``stage``; ``upstream``: the results of its upstream stages, by stage name."""
    deps = {role: upstream[name] for role, name in stage.roles.items()}
    return run_stage(cache_root, stage.kind, stage.key, stage.inputs, lambda folder: stage.body(folder, deps),
                     getattr(stage.module, "verify", None), check=stage.cfg.verify,
                     stale=getattr(stage.module, "stale", None))


def run_in_order(stages: dict[str, Stage], cache_root: str | Path) -> dict[str, StageResult]:
    """Run a single run's stages one after another in this process."""
    results: dict[str, StageResult] = {}
    for name, stage in stages.items():
        results[name] = execute(stage, cache_root, {d: results[d].result for d in stage.deps})
    return results


def checks(cfg: PipelineConfig) -> None:
    """Every check that must fail before an expensive stage starts: the config's, then each stage
    module's ``check(cfg)`` (where it has one) on the config each of its instances sees."""
    check_config(cfg)
    for module in MODULES:
        if hasattr(module, "check"):
            for instance in module.instances(cfg):
                module.check(instance.cfg if instance.cfg is not None else cfg)
