"""Command-line conventions shared by ``python -m pipelines.run`` and ``python -m pipelines.sweep``.

Its own module so that the two commands read their arguments the same way without one importing the
other's command-line module (the run delegates to the sweep's dask graph, so the sweep cannot import
the run).
"""

from __future__ import annotations

from collections.abc import Sequence


def shorthand(argv: Sequence[str]) -> list[str]:
    """``dataset=market1501`` is accepted for ``data.dataset=market1501``."""
    return [f"data.{a}" if a.startswith("dataset=") else a for a in argv]
