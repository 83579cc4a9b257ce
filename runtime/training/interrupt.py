"""Ctrl-C in a training loop: held until the current step ends, so the loop saves a consistent
checkpoint (one a rerun resumes bit for bit) and then stops; a second Ctrl-C stops at once."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Yield ``requested()``: true once Ctrl-C was pressed. Outside the main thread (a dask worker
    thread) signals cannot be caught, so ``requested()`` stays false and Ctrl-C acts as usual. The
    handler that was there before (SIG_IGN in a background job) is restored on the way out."""
    requested: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: object) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(True)
        log.warning("interrupted: saving a checkpoint after this step, then stopping (Ctrl-C again stops now)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous)
