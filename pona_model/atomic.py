"""Moved to ``runtime.atomic``; this name stays for code written against it."""

from runtime.atomic import *  # noqa: F403
from runtime.atomic import (  # noqa: F401
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
)
