"""One module per pipeline stage, each with the same contract, from which ``pipelines.graph`` builds
a run:

- ``settings(cfg) -> Settings``: the one function that reads the config. ``Settings`` (a frozen
  dataclass, ``StageSettings``) holds everything ``run`` reads; its ``fingerprint()``, with the upstream
  fingerprints, is the stage's cache key, so a setting ``run`` reads cannot be left out of it by
  mistake: it is either fingerprinted or declared ``run_only()`` (how the stage runs, never what it makes);
- ``instances(cfg) -> list[Instance]``: the copies of the stage this run needs (none, one, or one per
  method or generator), each with its name, its settings and the upstream stages it reads, by role.
  A module the methods table names as a method's ``filler`` has none: the table declares its copies
  (``fill_instances``), and its ``Result`` has a ``summary()`` for results.json;
- ``run(folder, settings, deps) -> Result``: writes the outputs into ``folder`` and returns its
  ``Result`` (a ``StageOutput``: what ``done.json`` records and later stages read); ``deps`` maps each
  declared role to that upstream stage's result;
- ``verify(result)`` (optional): raises when a recorded result's files are incomplete;
  ``stale(result)`` (optional): why a recorded result over files outside the run must not be reused;
  ``check(cfg)`` (optional): cheap checks of the run's config, before any stage starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pipelines import plan
from pipelines.config import PipelineConfig
from pipelines.stage_names import PREPARE_DATA, SUBSAMPLE, StageName, fill, trained_generator
from runtime.config import content


def run_only() -> Any:
    """A settings field that changes how the stage runs (device, workers, batch of a forward pass),
    never what it makes: left out of the fingerprint, as ``param(..., run_only=True)`` config keys are."""
    return field(metadata={"run_only": True})


class StageSettings:
    """Base of a stage's settings (a frozen, keyword-only dataclass)."""

    def fingerprint(self) -> dict[str, Any]:
        """The cache key's content: every field but the run-only ones, nested configs without their
        own run-only keys (``runtime.config.content``)."""
        return content(self)


class StageOutput:
    """Base of a stage's result (a frozen, keyword-only dataclass of JSON values, paths as strings)."""

    def to_json(self) -> dict[str, Any]:
        """What ``done.json`` records and ``from_json`` reads back."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Self:
        """A recorded result; keys a record of an older version lacks take their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in record.items() if k in names})


@dataclass(frozen=True)
class Instance:
    """``name`` is unique within a run (``train_reid[pona]``); ``settings`` is what this copy's ``run``
    reads (PATN's generator stages get theirs from the ``patn`` section); ``deps`` maps a role the stage
    reads (``train_generator``) to the stage that fills it (``train_generator[patn]``), in fingerprint
    order."""

    name: StageName
    settings: StageSettings
    deps: dict[str, StageName] = field(default_factory=dict)


def same(*names: StageName) -> dict[str, StageName]:
    """Roles named after the stages that fill them."""
    return {n: n for n in names}


def fill_instances(cfg: PipelineConfig, module: str, settings: Callable[[PipelineConfig], StageSettings]
                   ) -> list[Instance]:
    """The copies of a filling stage module (the ``__name__`` of a module the methods table names as a
    ``filler``; ``settings``: its function): one per method of the run it fills for, each reading the
    dataset, the kept list and, for a method with a generator, that generator."""
    out = []
    for method in plan.filled_by(cfg, module.rsplit(".", 1)[-1]):
        deps = same(PREPARE_DATA, SUBSAMPLE)
        if method.generator:
            deps["train_generator"] = trained_generator(method.generator)
        out.append(Instance(fill(method), settings(cfg), deps))
    return out
