"""One module per pipeline stage. Each exposes ``run(folder, cfg, deps) -> dict``: it writes its
outputs into ``folder`` and returns a JSON-able result (paths as strings) that later stages read
from ``deps`` (a mapping of upstream stage name to result). ``pipelines.graph`` wires them."""
