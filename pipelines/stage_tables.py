"""CSV tables a stage writes (kept / missing lists, synthesis manifests) with their path columns
relative to the table's own folder inside the run folder, so a moved or copied run folder still names
its images; ``read_table`` makes them absolute again for the stages that read them. Paths outside the
run folder (a user's dataset) stay absolute, and tables written before stay readable (absolute paths
are kept as they are)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from runtime.atomic import atomic_path
from runtime.portable import relative, resolve


def write_table(table: pd.DataFrame, path: Path, columns: Sequence[str] = ("path",)) -> Path:
    """Write ``table`` to ``path`` atomically, its path ``columns`` relative to ``path``'s folder where
    they lie inside the running stage's root (``runtime.portable``)."""
    out = table.copy()
    for column in columns:
        if column in out.columns:
            out[column] = [relative(v, path.parent) if isinstance(v, str) else v for v in out[column]]
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)
    return path


def read_table(path: str | Path, columns: Sequence[str] = ("path",), **read_csv: object) -> pd.DataFrame:
    """Read a table ``write_table`` wrote, its path ``columns`` absolute again (resolved against the
    table's folder); ``read_csv`` passes on to ``pandas.read_csv``."""
    table = pd.read_csv(path, **read_csv)  # type: ignore[arg-type]
    base = Path(path).parent
    for column in columns:
        if column in table.columns:
            table[column] = [resolve(v, base) if isinstance(v, str) and v else v for v in table[column]]
    return table
