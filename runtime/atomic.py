"""Atomic file writes: a reader never sees a half-written file under its final name.

Everything the project writes that a later run trusts (checkpoints, CSVs, manifests, images,
JSON results) goes through here, so an interrupted run leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from runtime.diskspace import DiskFullError, disk_full_error, is_disk_full


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file lives in the same directory so the final ``os.replace`` is a rename on one
    file system (atomic on POSIX). On any exception the temporary file is removed and ``path`` is
    left untouched. A write that finds the disk full raises ``DiskFullError`` (an ``OSError`` with
    ENOSPC) in one line naming the folder and its free space, the partial file removed.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(final.parent, final.name) from exc
        raise
    os.close(fd)
    os.chmod(tmp_name, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file an ordinary file's mode
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, Exception) and not isinstance(exc, DiskFullError) and is_disk_full(exc, final.parent):
            raise disk_full_error(final.parent, final.name) from exc
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
