"""A full disk as one clear error: which folder, how much space is left there, and what to do, instead
of a traceback from deep inside a writer (PIL, numpy, torch.save)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
NEARLY_FULL = 1 << 20  # bytes: below this, a failed write is taken for a full disk (torch.save hides the errno)


class DiskFullError(OSError):
    """No space left where a file was being written; the message names the folder and the free space.
    An ``OSError`` with ``errno.ENOSPC``, so code that catches that still does."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return str(self.strerror)


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Free bytes on the file system holding ``folder`` (its nearest existing parent); None if unknown."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def human(n: int | None) -> str:
    """Bytes as a short number with a unit (``12.3 MB``); '?' when unknown."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def is_disk_full(exc: BaseException, folder: str | os.PathLike | None = None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a write that failed for lack of space: an
    ``OSError`` with ENOSPC / EDQUOT, or a writer's error about a failed write while ``folder``'s disk is
    (nearly) full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in FULL_ERRNOS:
            return True
        current = current.__cause__ or current.__context__
    if folder is not None and isinstance(exc, RuntimeError) and "write" in str(exc).lower():
        free = free_bytes(folder)
        return free is not None and free < NEARLY_FULL
    return False


def disk_full_error(folder: str | os.PathLike, what: str = "") -> DiskFullError:
    """The one-line error for a write into ``folder`` that found no space (``what``: the file, if known)."""
    target = f" while writing {what}" if what else ""
    return DiskFullError(f"no space left on the disk holding {Path(folder).absolute()}{target} "
                         f"({human(free_bytes(folder))} free): free some space and rerun")
