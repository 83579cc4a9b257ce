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

Safety: a stage runs under an exclusive lock on its folder (``fcntl.flock`` on ``.lock``), so a
second run of the same stage waits and then reuses the first one's result instead of writing into
the same folder; ``done.json`` is written only after the outputs the result names exist and the
stage's own ``verify`` passed; temporary files a killed run left (``pona_model.atomic``'s
``.NAME.*.tmp``) are removed when the stage resumes; paths inside the cache are stored relative to
the cache root (``@cache/...``), so a run folder can be moved; files are fingerprinted by their
content (``file_digest``), never their size alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.atomic import atomic_write_text
from runtime.checkpoint import file_sha256

log = logging.getLogger(__name__)

DONE = "done.json"
STARTED = "started.json"
LOCK = ".lock"
HASHES = "file_hashes.json"  # in the cache root: path -> [size, mtime_ns, sha256]
RACY_SECONDS = 2.0
CACHE_PREFIX = "@cache/"  # how results name files under the cache root, so the root can move


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


def file_digest(path: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> str | None:
    """SHA-256 of a file's content (None when it does not exist), remembered in the cache root by
    (size, mtime) so a large annotation file is read once, yet a same-size edit is still seen. A
    file modified in the last ``RACY_SECONDS`` is not remembered: a second edit within the file
    system's clock tick would keep its mtime (git's "racy" rule)."""
    p = Path(path).absolute()
    if not p.is_file():
        return None
    stat = p.stat()
    stamp = [stat.st_size, stat.st_mtime_ns]
    table_path = Path(cache_root).absolute() / HASHES if cache_root is not None else None
    table: dict[str, Any] = {}
    if table_path is not None and table_path.is_file():
        with contextlib.suppress(ValueError, OSError):
            table = json.loads(table_path.read_text(encoding="utf-8"))
    known = table.get(str(p))
    if isinstance(known, list) and known[:2] == stamp:
        return str(known[2])
    digest = file_sha256(p)
    if table_path is not None and time.time() - stat.st_mtime > RACY_SECONDS:
        table[str(p)] = [*stamp, digest]
        with contextlib.suppress(OSError):  # a lost entry only costs a re-hash
            atomic_write_text(table_path, json.dumps(table, indent=1, sort_keys=True) + "\n")
    return digest


def to_portable(value: Any, root: Path) -> Any:
    """Absolute path strings under ``root`` become ``@cache/relative``; everything else is kept."""
    if isinstance(value, dict):
        return {k: to_portable(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [to_portable(v, root) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        with contextlib.suppress(ValueError):
            return CACHE_PREFIX + Path(value).relative_to(root).as_posix()
    return value


def from_portable(value: Any, root: Path) -> Any:
    """The inverse of ``to_portable`` for the cache root where the record is read now."""
    if isinstance(value, dict):
        return {k: from_portable(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [from_portable(v, root) for v in value]
    if isinstance(value, str) and value.startswith(CACHE_PREFIX):
        return str(root / value.removeprefix(CACHE_PREFIX))
    return value


def _cache_paths(value: Any, root: Path) -> Iterator[Path]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _cache_paths(v, root)
    elif isinstance(value, list):
        for v in value:
            yield from _cache_paths(v, root)
    elif isinstance(value, str) and value.startswith(CACHE_PREFIX):
        yield root / value.removeprefix(CACHE_PREFIX)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock on a stage folder for as long as the block runs (released if the process dies)."""
    with open(folder / LOCK, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("stage folder %s is in use by another run: waiting for it", folder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_orphans(folder: Path) -> int:
    """Delete the temporary files (``.NAME.*.tmp``, see ``pona_model.atomic``) a killed run left in
    its own stage folder; called under the folder's lock, so no live writer owns them."""
    removed = 0
    for path in folder.rglob(".*.tmp"):
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed += 1
    if removed:
        log.info("removed %d temporary files a killed run left in %s", removed, folder)
    return removed


def _read_done(folder: Path, root: Path) -> dict[str, Any] | None:
    done = folder / DONE
    if not done.is_file():
        return None
    record = from_portable(json.loads(done.read_text(encoding="utf-8")), root)
    return record


def run_stage(cache_root: str | Path, name: str, key: str, inputs: dict[str, Any],
              body: Callable[[Path], dict[str, Any]],
              verify: Callable[[dict[str, Any]], None] | None = None) -> StageResult:
    """Run ``body(folder)`` unless stage ``name`` with fingerprint ``key`` (see ``fingerprint``) is
    already done; ``body`` returns a JSON-able result (paths as strings) that later stages read;
    ``inputs`` is recorded beside it to say what the fingerprint covered; ``verify(result)`` raises
    when the outputs are incomplete (a count that does not match), so the stage is not recorded."""
    root = Path(cache_root).absolute()
    folder = stage_folder(root, name, key)
    record = _read_done(folder, root)
    if record is None:
        folder.mkdir(parents=True, exist_ok=True)
        with folder_lock(folder):
            record = _read_done(folder, root)  # another run may have finished it while we waited
            if record is None:
                return _run_locked(root, folder, name, key, inputs, body, verify)
    log.info("stage %s: cached (%s)", name, folder)
    return StageResult(name, key, folder, record["result"], record["seconds"], True)


def _run_locked(root: Path, folder: Path, name: str, key: str, inputs: dict[str, Any],
                body: Callable[[Path], dict[str, Any]],
                verify: Callable[[dict[str, Any]], None] | None) -> StageResult:
    resumed = (folder / STARTED).exists()
    if resumed:
        remove_orphans(folder)
    atomic_write_text(folder / STARTED, json.dumps({"stage": name, "inputs": inputs}, indent=2, default=str) + "\n")
    log.info("stage %s: %s in %s", name, "resuming" if resumed else "running", folder)
    t0 = time.perf_counter()
    result = body(folder)
    seconds = time.perf_counter() - t0
    portable = to_portable(json.loads(json.dumps(result, default=str)), root)
    missing = [str(p) for p in _cache_paths(portable, root) if not p.exists()]
    if missing:
        raise RuntimeError(f"stage {name} in {folder} names outputs that do not exist ({missing[0]}); "
                           "it was not recorded as done: rerun to redo it")
    if verify is not None:
        verify(result)
    atomic_write_text(folder / DONE, json.dumps({"stage": name, "fingerprint": key, "inputs": inputs,
                                                 "result": portable, "seconds": seconds},
                                                indent=2, default=str) + "\n")
    log.info("stage %s: done in %.1f s -> %s", name, seconds, folder)
    return StageResult(name, key, folder, from_portable(portable, root), seconds, False)
