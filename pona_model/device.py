"""Moved to ``runtime.device``; this name stays for code written against it."""

from runtime.device import *  # noqa: F403
from runtime.device import (  # noqa: F401
    PRECISIONS,
    autocast,
    cpu_has_bf16,
    precision_name,
    resolve_device,
    resolve_precision,
    torch_threads,
)
