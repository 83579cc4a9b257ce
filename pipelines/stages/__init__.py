"""One module per pipeline stage, each with the same contract, from which ``pipelines.graph`` builds
a run:

- ``instances(cfg) -> list[Instance]``: the copies of the stage this run needs (none, one, or one per
  method or generator), each with the upstream stages it reads, by role, and the config it sees;
- ``inputs(cfg) -> dict``: the settings the stage reads (run-only keys, declared once on the config
  fields with ``param(..., run_only=True)``, left out); with the upstream fingerprints this is the
  stage's cache fingerprint;
- ``run(folder, cfg, deps) -> dict``: writes the outputs into ``folder`` and returns a JSON-able result
  (paths as strings); ``deps`` maps each declared role to that upstream stage's result;
- ``verify(result)`` (optional): raises when a recorded result's files are incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Instance:
    """``name`` is unique within a run (``train_reid[pona]``); ``deps`` maps a role the stage reads
    (``train_generator``) to the stage that fills it (``train_generator[patn]``), in fingerprint order;
    ``cfg`` is the run's config as this copy sees it (``None``: the run's own), e.g. PATN's generator
    section in the generator slot."""

    name: str
    deps: dict[str, str] = field(default_factory=dict)
    cfg: Any = None


def same(*names: str) -> dict[str, str]:
    """Roles named after the stages that fill them."""
    return {n: n for n in names}
