"""The stages of one run as a graph: each stage has a fingerprint computed from the config alone
(its settings plus its upstream stages' fingerprints), so the whole graph is known before anything
runs, a rerun finds finished stages, and runs of a sweep that share a stage (the dataset, a
generator trained on the full set, the full-data re-ID model) share one folder and run it once.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pipelines import methods
from pipelines import stages as stage_package
from pipelines.config import PipelineConfig
from pipelines.stage_cache import StageResult, fingerprint, run_stage
from pipelines.stage_names import StageName
from pipelines.stages import (
    Instance,
    StageOutput,
    StageSettings,
    evaluate_generator,
    evaluate_reid,
    fill_instances,
    merge,
    prepare_auxiliary,
    prepare_data,
    pretrain_reid,
    subsample,
    train_generator,
    train_reid,
)
from pipelines.validate import check_config

# The stage modules before and after those that fill the missing images (which the methods table names).
BEFORE_FILLING: tuple[ModuleType, ...] = (prepare_data, subsample, prepare_auxiliary, pretrain_reid, train_generator)
AFTER_FILLING: tuple[ModuleType, ...] = (merge, train_reid, evaluate_reid, evaluate_generator)


def fillers() -> tuple[ModuleType, ...]:
    """The stage modules the methods table names as ``Method.filler``, in the table's order."""
    names = dict.fromkeys(m.filler for m in methods.TABLE.values() if m.filler)
    return tuple(importlib.import_module(f"{stage_package.__name__}.{name}") for name in names)


def modules() -> tuple[ModuleType, ...]:
    """The stage modules in an order in which every stage's upstream stages come first: the filling
    modules between the generators and the merge."""
    return (*BEFORE_FILLING, *fillers(), *AFTER_FILLING)


def instances(module: ModuleType, cfg: PipelineConfig) -> list[Instance]:
    """The module's instances in this run. A filling module declares none itself: it has one per
    method of the run that the table says it fills for (``pipelines.stages.fill_instances``)."""
    if module in fillers():
        return fill_instances(cfg, module.__name__, module.settings)
    return module.instances(cfg)


@dataclass(frozen=True)
class Stage:
    """One stage instance of a run: ``name`` is unique within the run (``train_reid[pona]``); ``kind``
    names its module's cache folder; ``settings`` is what its ``run`` reads and ``inputs`` their
    fingerprint (recorded beside the result); ``roles`` maps what the module reads to the upstream
    stage names (``deps``, in fingerprint order)."""

    name: StageName
    kind: str
    key: str
    settings: StageSettings
    inputs: dict[str, Any]
    roles: dict[str, StageName]
    module_name: str  # by name, so a stage travels to a dask worker as plain data

    @property
    def deps(self) -> tuple[StageName, ...]:
        return tuple(self.roles.values())

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def body(self, folder: Path, deps: dict[str, StageOutput]) -> dict[str, Any]:
        """``deps``: the upstream results by role; returns the result as recorded."""
        return self.module.run(folder, self.settings, deps).to_json()

    def output(self, record: dict[str, Any]) -> StageOutput:
        """A recorded result as the module's ``Result``."""
        return self.module.Result.from_json(record)

    def hook(self, name: str) -> Any:
        """The module's optional ``verify`` or ``stale``, on the recorded result (None where it has none)."""
        function = getattr(self.module, name, None)
        return None if function is None else lambda record: function(self.output(record))


def kind_of(module: ModuleType) -> str:
    return getattr(module, "KIND", module.__name__.rsplit(".", 1)[-1])


def build_stages(cfg: PipelineConfig) -> dict[StageName, Stage]:
    """The run's stages, from each stage module's declared instances, in an order that respects
    dependencies; each fingerprint is the stage's settings' and its upstream stages' fingerprints."""
    stages: dict[StageName, Stage] = {}
    for module in modules():
        for instance in instances(module, cfg):
            unknown = [d for d in instance.deps.values() if d not in stages]
            if unknown or instance.name in stages:
                raise RuntimeError(f"stage {instance.name}: upstream {unknown} not declared before it, or declared twice")
            kind, inputs = kind_of(module), instance.settings.fingerprint()
            key = fingerprint(kind, inputs, [stages[d].key for d in instance.deps.values()])
            stages[instance.name] = Stage(instance.name, kind, key, instance.settings, inputs, dict(instance.deps),
                                          module.__name__)
    return stages


def execute(stage: Stage, cache_root: str | Path, upstream: dict[str, StageOutput], check: str = "full"
            ) -> StageResult:
    """Run (or find) ``stage``; ``upstream``: the results of its upstream stages, by stage name;
    ``check``: how a recorded result's files are compared before reuse (the run's ``verify``)."""
    deps = {role: upstream[name] for role, name in stage.roles.items()}
    done = run_stage(cache_root, stage.kind, stage.key, stage.inputs, lambda folder: stage.body(folder, deps),
                     stage.hook("verify"), check=check, stale=stage.hook("stale"))
    return dataclasses.replace(done, result=stage.output(done.result))


def run_in_order(stages: dict[StageName, Stage], cache_root: str | Path, check: str = "full"
                 ) -> dict[StageName, StageResult]:
    """Run a single run's stages one after another in this process."""
    results: dict[StageName, StageResult] = {}
    for name, stage in stages.items():
        results[name] = execute(stage, cache_root, {d: results[d].result for d in stage.deps}, check)
    return results


def checks(cfg: PipelineConfig) -> None:
    """Every check that must fail before an expensive stage starts: the config's, then each stage
    module's ``check(cfg)`` where it has one."""
    check_config(cfg)
    for module in modules():
        if hasattr(module, "check"):
            module.check(cfg)
