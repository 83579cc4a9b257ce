"""Moved to ``runtime.training.interrupt`` (the training engine's); this name stays for code written against it."""

from runtime.training.interrupt import *  # noqa: F403
from runtime.training.interrupt import deferred_interrupt  # noqa: F401
