"""A full disk without root or LD_PRELOAD, for ``bench/faults.py``: put this folder first on
PYTHONPATH and every ``os.replace`` (how ``runtime.atomic`` lands each file, checkpoints included)
from the ``FAULT_ENOSPC_AT``-th on raises ``OSError(ENOSPC)``, so the disk stays full, as a real one
would. ``FAULT_COUNT_FILE`` only appends each call's destination (to choose ``k`` inside a stage)."""

from __future__ import annotations

import errno
import os

_AT = int(os.environ.get("FAULT_ENOSPC_AT", "0") or 0)
_COUNT_FILE = os.environ.get("FAULT_COUNT_FILE", "")
if _AT > 0 or _COUNT_FILE:
    _real_replace = os.replace
    _calls = [0]

    def _replace(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        _calls[0] += 1
        if _COUNT_FILE:
            with open(_COUNT_FILE, "a", encoding="utf-8") as handle:
                handle.write(f"{_calls[0]}\t{os.fspath(dst)}\n")
        if 0 < _AT <= _calls[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _real_replace(src, dst, *args, **kwargs)

    os.replace = _replace
