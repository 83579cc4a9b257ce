"""Follow the run config through ``python -m pipelines.run``: every call of a project function that is
handed the config or a part of it, and how often such a call climbs back up the package layering.

The run (``preset=smoke`` in a temporary folder unless overrides say otherwise) is traced with
``sys.setprofile``. A call is a *stop* when the called function lives in one of the project's packages
and one of its arguments (``self`` included) is a config object: an instance of ``PipelineConfig`` or of
any dataclass type its fields hold, at any depth (``GeneratorSection``, ``TrainConfig``,
``ReidTrainConfig``, ``SynthMarketConfig``, ``OptimConfig``, ...), whether it is the run's own object,
a copy or one derived with ``dataclasses.replace``. Its caller is the nearest project frame below it
(the dataclass machinery and the standard library in between are skipped). A stop *climbs* when the
caller's package lies below the callee's in ``tests/test_import_graph.py``'s ``ALLOWED`` (runtime <
poseformats < synthmarket, reid, pona_model < augment < pipelines): a lower layer calling back up,
through a callback, a hook or a config's ``__post_init__`` run by ``runtime.config.build``.

Stops and climbs are counted once per distinct function (a stop) and per distinct caller -> callee pair
(a climb), however often the run makes them; each in one of two phases: ``parse`` (the command line
made into the typed config, before ``run_pipeline``) and ``run`` (what ``run_pipeline`` does with it).

  python bench/config_walk.py                          # the smoke run, in a temporary folder
  python bench/config_walk.py preset=smoke methods=none,pona,copy --json walk.json
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import tempfile
import threading
import typing
from collections import defaultdict
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ is not an installed package

from pipelines.config import PipelineConfig  # noqa: E402
from pipelines.run import run_pipeline  # noqa: E402
from tests.test_import_graph import ALLOWED  # noqa: E402

RUN_PIPELINE = run_pipeline.__code__


def layers() -> dict[str, int]:
    """Each package's height in ``ALLOWED``: 0 for runtime, one above the highest package it may import."""
    @functools.cache
    def height(package: str) -> int:
        return 1 + max((height(p) for p in ALLOWED[package]), default=-1)
    return {p: height(p) for p in ALLOWED}


def config_types(root: type = PipelineConfig) -> frozenset[type]:
    """``root`` and every dataclass type its fields hold, at any depth."""
    found: set[type] = set()

    def walk(cls: type) -> None:
        if cls in found:
            return
        found.add(cls)
        for tp in typing.get_type_hints(cls).values():
            if dataclasses.is_dataclass(tp) and isinstance(tp, type):
                walk(tp)
    walk(root)
    return frozenset(found)


@dataclasses.dataclass(frozen=True)
class Where:
    package: str
    function: str  # module.qualname
    file: str


class Walk:
    """The profile hook: records every stop and the caller of each, by phase."""

    def __init__(self) -> None:
        self.layer = layers()
        self.types = config_types()
        self._where: dict[CodeType, Where | None] = {}
        self.calls: dict[str, int] = defaultdict(int)
        # phase -> callee -> where it is; phase -> (caller, callee) -> where they are
        self.stops: dict[str, dict[str, Where]] = {"parse": {}, "run": {}}
        self.edges: dict[str, dict[tuple[str, str], tuple[Where | None, Where]]] = {"parse": {}, "run": {}}
        self._running = 0  # depth of run_pipeline frames

    def where(self, code: CodeType, frame: FrameType) -> Where | None:
        if code not in self._where:
            try:
                rel = Path(code.co_filename).resolve().relative_to(ROOT)
            except ValueError:
                rel = None
            package = rel.parts[0] if rel is not None and len(rel.parts) > 1 else ""
            if package in self.layer:
                module = frame.f_globals.get("__name__", rel.with_suffix("").as_posix().replace("/", "."))
                self._where[code] = Where(package, f"{module}.{code.co_qualname}", rel.as_posix())
            else:
                self._where[code] = None
        return self._where[code]

    def holds_config(self, frame: FrameType) -> bool:
        code = frame.f_code
        n = code.co_argcount + code.co_kwonlyargcount
        n += bool(code.co_flags & 0x04) + bool(code.co_flags & 0x08)  # *args, **kwargs
        values = frame.f_locals
        for name in code.co_varnames[:n]:
            value = values.get(name)
            items = value if isinstance(value, (tuple, list)) else (value.values() if isinstance(value, dict)
                                                                     else (value,))
            if any(type(v) in self.types for v in items):
                return True
        return False

    def __call__(self, frame: FrameType, event: str, _arg: Any) -> None:
        if frame.f_code is RUN_PIPELINE and event in ("call", "return"):
            self._running += 1 if event == "call" else -1
        if event != "call":
            return
        callee = self.where(frame.f_code, frame)
        if callee is None or not self.holds_config(frame):
            return
        caller, back = None, frame.f_back
        while back is not None and caller is None:
            caller = self.where(back.f_code, back)
            back = back.f_back
        phase = "run" if self._running else "parse"
        self.calls[callee.function] += 1
        self.stops[phase].setdefault(callee.function, callee)
        self.edges[phase].setdefault((caller.function if caller else "", callee.function), (caller, callee))

    def climbs(self, phases: tuple[str, ...]) -> list[str]:
        """Each distinct climb of ``phases``, as ``caller (package) -> callee (package)``."""
        found = {f"{a.function} ({a.package}) -> {b.function} ({b.package})": None
                 for phase in phases for a, b in self.edges[phase].values()
                 if a is not None and self.layer[a.package] < self.layer[b.package]}
        return list(found)

    def figures(self, phases: tuple[str, ...]) -> dict[str, Any]:
        stops = {name: where for phase in phases for name, where in self.stops[phase].items()}
        climbs = self.climbs(phases)
        return {"stops": len(stops), "files": len({w.file for w in stops.values()}), "climbs": len(climbs),
                "climb_edges": climbs, "stop_functions": {name: self.calls[name] for name in sorted(stops)}}

    def summary(self) -> dict[str, Any]:
        """The walk from ``main`` (both phases) and within ``run_pipeline`` alone."""
        return {"main": self.figures(("parse", "run")), "run_pipeline": self.figures(("run",))}


def trace_run(overrides: list[str]) -> dict[str, Any]:
    """Run ``python -m pipelines.run`` with ``overrides`` under the profile hook; its walk."""
    from pipelines.run import main

    walk = Walk()
    threading.setprofile(walk)
    sys.setprofile(walk)
    try:
        code = main(overrides)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    if code != 0:
        raise SystemExit(f"python -m pipelines.run {' '.join(overrides)} exited {code}")
    return walk.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="pipeline key=value (default: preset=smoke in a temporary out=)")
    parser.add_argument("--json", default="", help="also write the walk here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = args.overrides or ["preset=smoke", f"out={tmp}"]
        summary = trace_run(overrides)
    whole, run = summary["main"], summary["run_pipeline"]
    for name, count in whole["stop_functions"].items():
        print(f"  {count:5d}  {'run  ' if name in run['stop_functions'] else 'parse'}  {name}")
    print("climbs:")
    for edge in whole["climb_edges"]:
        print(f"  {'run  ' if edge in run['climb_edges'] else 'parse'}  {edge}")
    for what, figures in summary.items():
        print(f"from {what}: {figures['stops']} stops in {figures['files']} files, "
              f"{figures['climbs']} climbs back up")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
