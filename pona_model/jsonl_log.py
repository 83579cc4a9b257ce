"""Moved to ``runtime.jsonl_log``; this name stays for code written against it."""

from runtime.jsonl_log import *  # noqa: F403
from runtime.jsonl_log import (  # noqa: F401
    append_record,
    truncate_records,
)
