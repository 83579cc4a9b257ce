"""Stages that run once: each stage's outputs live in a folder keyed by a fingerprint of its config
and of its inputs' fingerprints, so

- a rerun with the same config finds ``done.json`` and skips the stage;
- a changed config (or a changed upstream stage) gives a new fingerprint, hence a new folder, and the
  stage is redone there, while runs that share a stage (the same data, the same generator) share
  its folder;
- a stage killed half-way finds its folder without ``done.json`` and runs again in it: stages are
  written to resume (training from its checkpoint, synthesis skipping finished images), and every
  file is written atomically, so nothing half-written is mistaken for finished work.

``done.json`` (written last, atomically) holds the fingerprint, the stage's result and its duration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pona_model.atomic import atomic_write_text

log = logging.getLogger(__name__)

DONE = "done.json"
STARTED = "started.json"


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (configs as dicts, upstream fingerprints)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StageResult:
    name: str
    fingerprint: str
    folder: Path
    result: dict[str, Any]
    seconds: float
    cached: bool


def stage_folder(cache_root: str | Path, name: str, key: str) -> Path:
    """Absolute, so the paths that stages record and hand on (``data.root`` next to an annotation
    file, for one) mean the same thing to every later reader, whatever ``out`` was relative to."""
    return (Path(cache_root) / name / key).absolute()


def run_stage(cache_root: str | Path, name: str, key: str, inputs: dict[str, Any],
              body: Callable[[Path], dict[str, Any]]) -> StageResult:
    """Run ``body(folder)`` unless stage ``name`` with fingerprint ``key`` (see ``fingerprint``) is
    already done; ``body`` returns a JSON-able result (paths as strings) that later stages read;
    ``inputs`` is recorded beside it to say what the fingerprint covered."""
    folder = stage_folder(cache_root, name, key)
    done = folder / DONE
    if done.exists():
        record = json.loads(done.read_text(encoding="utf-8"))
        log.info("stage %s: cached (%s)", name, folder)
        return StageResult(name, key, folder, record["result"], record["seconds"], True)
    folder.mkdir(parents=True, exist_ok=True)
    resumed = (folder / STARTED).exists()
    atomic_write_text(folder / STARTED, json.dumps({"stage": name, "inputs": inputs}, indent=2, default=str) + "\n")
    log.info("stage %s: %s in %s", name, "resuming" if resumed else "running", folder)
    t0 = time.perf_counter()
    result = body(folder)
    seconds = time.perf_counter() - t0
    atomic_write_text(done, json.dumps({"stage": name, "fingerprint": key, "inputs": inputs, "result": result,
                                        "seconds": seconds}, indent=2, default=str) + "\n")
    log.info("stage %s: done in %.1f s -> %s", name, seconds, folder)
    return StageResult(name, key, folder, result, seconds, False)
