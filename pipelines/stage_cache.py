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
stage's own ``verify`` passed; temporary files a killed run left (``runtime.atomic``'s
``.NAME.*.tmp``) are removed when the stage resumes; paths inside the cache are stored relative to
the cache root (``@cache/...``), so a run folder can be moved; files are fingerprinted by their
content (``file_digest``), never their size alone.

Relocation: while a stage runs, ``runtime.portable`` knows the cache root, so the files a stage writes
name what is inside the cache relative to themselves (trainers' checkpoints, CSV manifests), and
the JSON files it leaves are rewritten the same way before it is recorded: nothing recorded under the
cache names the machine's absolute path of it.

Verify on reuse: ``done.json`` records every output file's size and SHA-256 (``stage_files``). Before a
recorded stage is reused every hash is compared (``check="full"``, the default: a bit flip in an image
keeps its size; ``check="size"`` compares sizes and the checkpoints' hashes only); a file that differs is
logged in one line, removed, and the stage is redone (it resumes, so only what was lost is made again).
Records of an older format (no sizes) are redone too.

A full disk (``ENOSPC``) while a stage runs is one line naming the folder, the free space there and what
the stage needs; the stage is not recorded, its partial outputs stay, and the rerun resumes.
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

import torch

from pipelines.provenance import made_on
from pipelines.stage_files import damage, record_files, total_bytes
from runtime.atomic import atomic_write_text
from runtime.checkpoint import file_sha256
from runtime.diskspace import DiskFullError, free_bytes, human, is_disk_full
from runtime.portable import JSON_SUFFIXES, embedded_pattern, portable_root, relative_json_file

log = logging.getLogger(__name__)

DONE = "done.json"
STARTED = "started.json"
LOCK = ".lock"
HASHES = "file_hashes.json"  # in the cache root: path (@cache/... inside it) -> [size, mtime_ns, sha256]
FORMAT = 2  # done.json: 2 records the output files (sizes, hashes); older records are redone, never trusted
BOOKKEEPING = (DONE, STARTED, LOCK)  # a stage folder's files that are not its outputs
RACY_SECONDS = 2.0
CACHE_PREFIX = "@cache/"  # how results name files under the cache root, so the root can move


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (configs as dicts, upstream fingerprints)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StageResult:
    """``result``: the stage's result as recorded (JSON values; ``pipelines.graph.execute`` hands it on
    as the stage module's typed ``Result``)."""

    name: str
    fingerprint: str
    folder: Path
    result: Any
    seconds: float
    cached: bool
    # provenance.made_on() of the run that made it, taken when the stage finished (None: not recorded); a stage
    # whose config sets its own ``threads`` trained with those (its train/config.json)
    made_on: dict[str, Any] | None = None


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
    name = to_portable(str(p), Path(cache_root).absolute()) if cache_root is not None else str(p)
    known = table.get(name)
    if isinstance(known, list) and known[:2] == stamp:
        return str(known[2])
    digest = file_sha256(p)
    if table_path is not None and time.time() - stat.st_mtime > RACY_SECONDS:
        table[name] = [*stamp, digest]
        with contextlib.suppress(OSError):  # a lost entry only costs a re-hash
            atomic_write_text(table_path, json.dumps(table, indent=1, sort_keys=True) + "\n")
    return digest


def to_portable(value: Any, root: Path) -> Any:
    """Absolute path strings under ``root`` become ``@cache/relative``, and so does a path under it inside
    a longer text ("checkpoint: @cache/pretrain_reid/.../checkpoint.pt (sha256 ...)"); the rest is kept."""
    if isinstance(value, dict):
        return {k: to_portable(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [to_portable(v, root) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        with contextlib.suppress(ValueError):
            return CACHE_PREFIX + Path(value).relative_to(root).as_posix()
    if isinstance(value, str) and str(root) in value:
        return embedded_pattern(str(root)).sub(CACHE_PREFIX.rstrip("/"), value)
    return value


def from_portable(value: Any, root: Path) -> Any:
    """The inverse of ``to_portable`` for the cache root where the record is read now."""
    if isinstance(value, dict):
        return {k: from_portable(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [from_portable(v, root) for v in value]
    if isinstance(value, str) and value.startswith(CACHE_PREFIX):
        return str(root / value.removeprefix(CACHE_PREFIX))
    if isinstance(value, str) and CACHE_PREFIX in value:
        return value.replace(CACHE_PREFIX, str(root) + "/")
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
    """Delete the temporary files (``.NAME.*.tmp``, see ``runtime.atomic``) a killed run left in
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


def _reusable(folder: Path, root: Path, name: str, check: str, repair: bool) -> dict[str, Any] | None:
    """The stage's record if its outputs are as recorded (every hash under ``check="full"``; sizes and
    checkpoint hashes under ``check="size"``), else None. With ``repair`` (under the folder's lock) the
    reason is logged in one line, and the record and the damaged files are removed, so the stage resumes
    and makes them again."""
    record = _read_done(folder, root)
    if record is None:
        return None
    if record.get("format") != FORMAT or not isinstance(record.get("files"), dict):
        if repair:
            log.warning("stage %s: %s was recorded by an older version of the cache (no output sizes to check); "
                        "redoing the stage", name, folder / DONE)
            (folder / DONE).unlink()
        return None
    damaged = damage(folder, record["files"], check)
    if not damaged:
        return record
    if repair:
        first, how = damaged[0]
        more = f" (and {len(damaged) - 1} more files)" if len(damaged) > 1 else ""
        log.warning("stage %s: %s changed since it was recorded (%s)%s; redoing the stage", name, folder / first,
                    how, more)
        (folder / DONE).unlink()
        for relative_name, _ in damaged:
            path = folder / relative_name
            if path.is_symlink() or path.is_file():
                path.unlink()
    return None


class InputChanged(ValueError):
    """An input outside the run folder changed in place since a stage over it was recorded."""


def run_stage(cache_root: str | Path, name: str, key: str, inputs: dict[str, Any],
              body: Callable[[Path], dict[str, Any]],
              verify: Callable[[dict[str, Any]], None] | None = None, check: str = "full",
              stale: Callable[[dict[str, Any]], str | None] | None = None) -> StageResult:
    """Run ``body(folder)`` unless stage ``name`` with fingerprint ``key`` (see ``fingerprint``) is
    already done and its outputs are as recorded (``check``: ``full`` compares every hash, ``size``
    sizes and checkpoint hashes); ``body`` returns a JSON-able result (paths as strings) that later
    stages read; ``inputs`` is recorded beside it to say what the fingerprint covered; ``verify(result)``
    raises when the outputs are incomplete (a count that does not match), so the stage is not recorded;
    ``stale(result)`` says why a recorded result over inputs outside the run folder (a user's dataset)
    must not be reused, which refuses the run (``InputChanged``, one line)."""
    root = Path(cache_root).absolute()
    folder = stage_folder(root, name, key)
    record = _reusable(folder, root, name, check, repair=False)
    if record is None:
        folder.mkdir(parents=True, exist_ok=True)
        with folder_lock(folder):
            # another run may have finished it while we waited; a damaged record is removed here
            record = _reusable(folder, root, name, check, repair=True)
            if record is None:
                return _run_locked(root, folder, name, key, inputs, body, verify)
    reason = stale(record["result"]) if stale is not None else None
    if reason:
        raise InputChanged(f"stage {name} in {folder}: {reason}")
    log.info("stage %s: cached (%s)", name, folder)
    maker = record.get("made_on")
    _warn_other_threads(name, maker)
    return StageResult(name, key, folder, record["result"], record["seconds"], True, maker)


_THREAD_PAIRS_WARNED: set[tuple[Any, int]] = set()


def _warn_other_threads(name: str, maker: dict[str, Any] | None) -> None:
    """Say, once per process for each pair of thread counts, that a reused stage was made with another
    torch thread count: its numbers are that run's, and a rerun from scratch here would differ."""
    here = torch.get_num_threads()  # made_on()'s torch_threads, without reading /proc/cpuinfo per cached stage
    if not maker or maker.get("torch_threads") == here:
        return
    pair = (maker.get("torch_threads"), here)
    if pair in _THREAD_PAIRS_WARNED:
        return
    _THREAD_PAIRS_WARNED.add(pair)
    log.warning("stage %s: cached from a run with %s torch threads, this run has %s: its numbers are that run's, "
                "as may be other reused stages' (results.json stages.NAME.made_on)", name, pair[0], here)


def _run_locked(root: Path, folder: Path, name: str, key: str, inputs: dict[str, Any],
                body: Callable[[Path], dict[str, Any]],
                verify: Callable[[dict[str, Any]], None] | None) -> StageResult:
    resumed = (folder / STARTED).exists()
    try:
        if resumed:
            remove_orphans(folder)
        atomic_write_text(folder / STARTED, json.dumps({"stage": name, "inputs": to_portable(inputs, root)},
                                                       indent=2, default=str) + "\n")
        log.info("stage %s: %s in %s", name, "resuming" if resumed else "running", folder)
        t0 = time.perf_counter()
        with portable_root(root):
            result = body(folder)
        seconds = time.perf_counter() - t0
        maker = made_on()
        portable = to_portable(json.loads(json.dumps(result, default=str)), root)
        missing = [str(p) for p in _cache_paths(portable, root) if not p.exists()]
        if missing:
            raise RuntimeError(f"stage {name} in {folder} names outputs that do not exist ({missing[0]}); "
                               "it was not recorded as done: rerun to redo it")
        if verify is not None:
            verify(result)
        relative_reports(folder, root)
        files = record_files(folder, BOOKKEEPING)
        atomic_write_text(folder / DONE, json.dumps({"stage": name, "format": FORMAT, "fingerprint": key,
                                                     "inputs": to_portable(inputs, root), "result": portable,
                                                     "seconds": seconds, "made_on": maker, "files": files},
                                                    indent=2, default=str) + "\n")
    except Exception as exc:
        if is_disk_full(exc, folder):
            raise disk_full(name, folder, root) from exc
        raise
    log.info("stage %s: done in %.1f s -> %s", name, seconds, folder)
    return StageResult(name, key, folder, from_portable(portable, root), seconds, False, maker)


def relative_reports(folder: Path, root: Path) -> int:
    """Rewrite the stage's JSON files (reports, configs, logs) so the paths under the cache root they
    name are relative to their own folder; returns how many were rewritten. Links are not followed
    (a merged set's links point into other stages' folders)."""
    rewritten = 0
    for directory, _subdirs, names in os.walk(folder):
        for file_name in names:
            path = Path(directory) / file_name
            if file_name.endswith(JSON_SUFFIXES) and file_name not in BOOKKEEPING and not path.is_symlink():
                with contextlib.suppress(ValueError, UnicodeDecodeError):  # not JSON after all: left as it is
                    rewritten += relative_json_file(path, root)
    return rewritten


def disk_full(name: str, folder: Path, root: Path) -> DiskFullError:
    """The one line for a stage that ran out of space: the folder, its free space, and what the stage
    needs (its last recorded output of this kind, or at least what it has written so far)."""
    kind = folder.parent
    sizes = []
    for done in kind.glob(f"*/{DONE}"):
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(done.read_text(encoding="utf-8"))
            if isinstance(record.get("files"), dict):
                sizes.append((done.stat().st_mtime, total_bytes(record["files"])))
    written = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    if sizes:
        need = f"about {human(max(sizes)[1])} in all (the last {kind.name} stage's outputs), {human(written)} written"
    else:
        need = f"more than the {human(written)} it has written so far"
    return DiskFullError(f"stage {name}: no space left on the disk holding {folder} ({human(free_bytes(folder))} "
                         f"free); the stage needs {need}; it was not recorded as done: free some space and rerun, "
                         "it resumes where it stopped")
