"""Paths written inside a movable folder (a pipeline's ``out=``) are stored relative, so the folder can
be copied to another disk or machine, or mounted elsewhere, and still mean the same files.

The pipeline's stage runner names the movable root (``portable_root``) while a stage runs; writers that
record paths (trainers' checkpoints, manifests) pass them through ``relative`` with the folder the record
lives in, and readers of path columns ``resolve`` them against that folder again. Paths outside the root
(a user's dataset) stay absolute: they do not move with the run. Outside any root nothing changes, so a
command run on its own writes what it always wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from runtime.atomic import atomic_write_text

_ROOT: ContextVar[Path | None] = ContextVar("portable_root", default=None)


@contextlib.contextmanager
def portable_root(root: str | os.PathLike) -> Iterator[Path]:
    """Within the block, ``relative`` makes paths under ``root`` relative (per thread and task)."""
    token = _ROOT.set(Path(os.path.abspath(root)))
    try:
        yield _ROOT.get()  # type: ignore[misc]
    finally:
        _ROOT.reset(token)


def current_root() -> Path | None:
    """The movable root of the stage running in this thread, or None outside a stage."""
    return _ROOT.get()


def is_under(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether absolute ``path`` is ``root`` or lies below it (by name, without following links)."""
    p, r = os.path.normpath(os.fspath(path)), os.path.normpath(os.fspath(root))
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def embedded_pattern(root: str) -> re.Pattern[str]:
    """``root`` inside a longer text ("checkpoint: /x/cache/a.pt (sha256 ...)"), not a longer name."""
    return re.compile(re.escape(root) + r"(?=/|$|[\s'\",;:)\]}])")


def relative(value: Any, base: str | os.PathLike, root: str | os.PathLike | None = None) -> Any:
    """``value`` (a string, or dicts and lists of them) with every absolute path under ``root`` (default:
    the current ``portable_root``; none: ``value`` unchanged) written relative to the folder ``base``;
    a path inside a longer text has its root part replaced the same way."""
    top = Path(os.path.abspath(root)) if root is not None else current_root()
    if top is None:
        return value
    start = os.path.abspath(base)
    return _relative(value, start, str(top), embedded_pattern(str(top)), os.path.relpath(top, start))


def _relative(value: Any, start: str, root: str, pattern: re.Pattern[str], rel_root: str) -> Any:
    if isinstance(value, dict):
        return {k: _relative(v, start, root, pattern, rel_root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_relative(v, start, root, pattern, rel_root) for v in value]
    if not isinstance(value, str) or root not in value:
        return value
    if os.path.isabs(value) and is_under(value, root):
        return os.path.relpath(value, start)
    return pattern.sub(lambda _: rel_root, value)


def resolve(path: str | os.PathLike, base: str | os.PathLike) -> str:
    """A path recorded by ``relative``, as an absolute path again: relative ones against ``base`` (the
    folder of the record); absolute ones and '' unchanged."""
    text = os.fspath(path)
    if not text or os.path.isabs(text):
        return text
    return os.path.normpath(os.path.join(os.path.abspath(base), text))


# Files the stage runner rewrites after a stage: JSON records and reports nobody reads a path back from
# as an absolute one (readers of path columns in CSV files resolve them explicitly; see the writers).
JSON_SUFFIXES = (".json", ".jsonl")


def relative_json_file(path: Path, root: str | os.PathLike) -> bool:
    """Rewrite a JSON (or JSON-lines) file so its paths under ``root`` are relative to its own folder;
    atomically, and only when it names ``root``. Returns whether it was rewritten."""
    text = path.read_text(encoding="utf-8")
    top = os.path.abspath(root)
    if top not in text:
        return False
    base = path.parent
    if path.suffix == ".jsonl":
        lines = [json.dumps(relative(json.loads(line), base, top)) if line.strip() else line
                 for line in text.splitlines()]
        new = "\n".join(lines) + ("\n" if text.endswith("\n") else "")
    else:
        new = json.dumps(relative(json.loads(text), base, top), indent=2) + "\n"
    atomic_write_text(path, new)
    return True
