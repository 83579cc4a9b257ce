"""The stages of one run as a graph: each stage has a fingerprint computed from the config alone
(its own settings plus its upstream stages' fingerprints), so the whole graph is known before
anything runs, a rerun finds finished stages, and runs of a sweep that share a stage (the dataset,
a generator trained on the full set, the full-data re-ID model) share one folder and run it once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig, generator_view
from pipelines.stage_cache import StageResult, fingerprint, run_stage
from pipelines.stages import (
    evaluate_generator,
    evaluate_reid,
    merge,
    prepare_auxiliary,
    prepare_data,
    pretrain_reid,
    subsample,
    synthesize,
    train_generator,
    train_reid,
)
from pipelines.validate import check_config


@dataclass(frozen=True)
class Stage:
    """``name`` is unique within a run (``train_reid[pona]``); ``kind`` names its module and cache
    folder; ``body(folder, deps)`` gets the results of ``deps`` by name."""

    name: str
    kind: str
    key: str
    inputs: dict[str, Any]
    deps: tuple[str, ...]
    body: Callable[[Path, dict[str, Any]], dict[str, Any]]
    verify: Callable[[dict[str, Any]], None] | None = None  # raises when the outputs are incomplete


VERIFY: dict[str, Callable[[dict[str, Any]], None]] = {
    "prepare_data": prepare_data.verify, "synthesize": synthesize.verify, "merge": merge.verify}


def build_stages(cfg: PipelineConfig) -> dict[str, Stage]:
    """The run's stages in an order that respects dependencies."""
    stages: dict[str, Stage] = {}

    def add(name: str, kind: str, inputs: dict[str, Any], deps: tuple[str, ...],
            body: Callable[[Path, dict[str, Any]], dict[str, Any]]) -> None:
        key = fingerprint(kind, inputs, [stages[d].key for d in deps])
        stages[name] = Stage(name, kind, key, inputs, deps, body, VERIFY.get(kind))

    add("prepare_data", "prepare_data", prepare_data.inputs(cfg), (),
        lambda f, d: prepare_data.run(f, cfg, d))
    add("subsample", "subsample", subsample.inputs(cfg), ("prepare_data",),
        lambda f, d: subsample.run(f, cfg, d))
    if prepare_auxiliary.needed(cfg):  # depends on the dataset's settings only: shared by a whole sweep
        add("prepare_auxiliary", "prepare_auxiliary", prepare_auxiliary.inputs(cfg), (),
            lambda f, d: prepare_auxiliary.run(f, cfg, d))
    if pretrain_reid.needed(cfg):
        add("pretrain_reid", "pretrain_reid", pretrain_reid.inputs(cfg), ("prepare_auxiliary",),
            lambda f, d: pretrain_reid.run(f, cfg, d))
    pretrained = ("pretrain_reid",) if "pretrain_reid" in stages else ()
    augmenting = "pona" in cfg.methods and cfg.portion < 1.0
    if augmenting or (cfg.evaluate_generator and "pona" in cfg.methods):
        add("train_generator", "train_generator", train_generator.inputs(cfg), train_generator.dependencies(cfg),
            lambda f, d: train_generator.run(f, cfg, d))
    if augmenting:
        add("synthesize", "synthesize", synthesize.inputs(cfg), ("prepare_data", "subsample", "train_generator"),
            lambda f, d: synthesize.run(f, cfg, d))
        add("merge[augmented]", "merge", merge.inputs(cfg), ("prepare_data", "subsample", "synthesize"),
            lambda f, d: merge.run(f, cfg, d, "synthesize"))
    copying = "copy" in cfg.methods and cfg.portion < 1.0
    if copying:
        add("synthesize[copy]", "synthesize", synthesize.copy_inputs(cfg), ("prepare_data", "subsample"),
            lambda f, d: synthesize.run_copy(f, cfg, d))
        add("merge[copy]", "merge", merge.inputs(cfg), ("prepare_data", "subsample", "synthesize[copy]"),
            lambda f, d: merge.run(f, cfg, d, "synthesize[copy]"))
    patn_cfg = generator_view(cfg, "patn")  # Table VI's comparison row: the generator stages again, with PATN
    patn_augmenting = "patn" in cfg.methods and cfg.portion < 1.0
    if patn_augmenting or (cfg.evaluate_generator and "patn" in cfg.methods):
        add("train_generator[patn]", "train_generator", train_generator.inputs(patn_cfg),
            train_generator.dependencies(patn_cfg),
            lambda f, d: train_generator.run(f, patn_cfg, d))
    if patn_augmenting:
        add("synthesize[patn]", "synthesize", synthesize.inputs(patn_cfg),
            ("prepare_data", "subsample", "train_generator[patn]"),
            lambda f, d: synthesize.run(f, patn_cfg, _generator_deps(d, "patn")))
        add("merge[patn]", "merge", merge.inputs(cfg), ("prepare_data", "subsample", "synthesize[patn]"),
            lambda f, d: merge.run(f, cfg, d, "synthesize[patn]"))
    sources = {"none": "merge[reduced]", "pona": "merge[augmented]" if augmenting else "merge[reduced]",
               "patn": "merge[patn]" if patn_augmenting else "merge[reduced]",
               "copy": "merge[copy]" if copying else "merge[reduced]", "full": "prepare_data"}
    if "merge[reduced]" in {sources[m] for m in cfg.methods}:
        add("merge[reduced]", "merge", merge.inputs(cfg), ("prepare_data", "subsample"),
            lambda f, d: merge.run(f, cfg, d))
    trained: dict[str, str] = {}  # method -> its training stage
    trainer_of: dict[str, str] = {}  # training set -> the stage that trains on it
    for method in cfg.methods:
        source = sources[method]
        if source not in trainer_of:  # at p = 1 'pona' and 'copy' train on the reduced set, as 'none'
            trainer_of[source] = f"train_reid[{method}]"
            full = ("prepare_data",) if cfg.reid.budget == "iterations" and source != "prepare_data" else ()
            synthesised = source not in ("merge[reduced]", "prepare_data")  # augment.label applies
            add(trainer_of[source], "train_reid", train_reid.inputs(cfg, synthesised), (source, *pretrained, *full),
                lambda f, d, source=source, s=synthesised: train_reid.run(
                    f, cfg, d[source]["root"], d.get("pretrain_reid", {}).get("checkpoint", ""),
                    d["prepare_data"]["root"] if "prepare_data" in d else "", synthesised=s))
        trained[method] = trainer_of[source]
    for method in cfg.methods:
        name = f"evaluate_reid[{method}]"
        if trained[method] != f"train_reid[{method}]":
            continue
        add(name, "evaluate_reid", evaluate_reid.inputs(cfg), (trained[method], "prepare_data"),
            lambda f, d, t=trained[method]: evaluate_reid.run(f, cfg, d[t]["checkpoint"], d["prepare_data"]["root"]))
    if cfg.evaluate_generator and "train_generator" in stages:
        add("evaluate_generator", "evaluate_generator", evaluate_generator.inputs(cfg),
            ("prepare_data", "train_generator"), lambda f, d: evaluate_generator.run(f, cfg, d))
    if cfg.evaluate_generator and "train_generator[patn]" in stages:
        add("evaluate_generator[patn]", "evaluate_generator", evaluate_generator.inputs(patn_cfg),
            ("prepare_data", "train_generator[patn]"),
            lambda f, d: evaluate_generator.run(f, patn_cfg, _generator_deps(d, "patn")))
    return stages


def _generator_deps(deps: dict[str, Any], method: str) -> dict[str, Any]:
    """The generator stages read their generator as ``train_generator``: give them ``method``'s."""
    return {**deps, "train_generator": deps[f"train_generator[{method}]"]}


def method_stage(cfg: PipelineConfig, stages: dict[str, Stage], method: str) -> str:
    """The evaluation stage whose result is ``method``'s (``pona`` at p = 1 is ``none``'s)."""
    name = f"evaluate_reid[{method}]"
    if name in stages:
        return name
    return next(f"evaluate_reid[{m}]" for m in cfg.methods if f"evaluate_reid[{m}]" in stages
                and stages[f"train_reid[{m}]"].deps[0] == "merge[reduced]")


def execute(stage: Stage, cache_root: str | Path, deps: dict[str, Any]) -> StageResult:
    return run_stage(cache_root, stage.kind, stage.key, stage.inputs, lambda folder: stage.body(folder, deps),
                     stage.verify)


def run_in_order(stages: dict[str, Stage], cache_root: str | Path) -> dict[str, StageResult]:
    """Run a single run's stages one after another in this process."""
    results: dict[str, StageResult] = {}
    for name, stage in stages.items():
        results[name] = execute(stage, cache_root, {d: results[d].result for d in stage.deps})
    return results


def checks(cfg: PipelineConfig) -> None:
    """Every check that must fail before an expensive stage starts."""
    check_config(cfg)
    prepare_data.check(cfg)
    prepare_auxiliary.check(cfg)
    train_generator.check(cfg)
    if "patn" in cfg.methods:
        train_generator.check(generator_view(cfg, "patn"))
