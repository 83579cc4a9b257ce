"""The JSON-lines training logs of both trainers: one record per line, appended as training goes,
and cut back to the resumed step when a run resumes, so a log never holds the lost tail of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtime.atomic import atomic_write_text


def append_record(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def truncate_records(path: Path, key: str, last: int) -> None:
    """Keep only the records whose ``key`` (iteration or epoch; 0 when absent) is at most ``last``."""
    if not path.exists():
        return
    keep = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get(key, 0) <= last]
    atomic_write_text(path, "".join(line + "\n" for line in keep))
