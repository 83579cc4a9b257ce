"""One pipeline run as a subprocess for ``bench/faults.py``: started in its own process group (so a
signal reaches the whole run, as Ctrl-C or an OOM kill would), its log read live (so a fault can be
timed from the moment a stage starts), and what it did read back from that log and its results.json."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHIM = Path(__file__).resolve().parent / "fault_shim"
METHODS = "none,pona,copy,oracle,full"
# A re-ID checkpoint after every step (a run-only key: the same stages, the same results), so a kill in
# the second step of a smoke epoch (two steps) resumes mid-epoch, not from the epoch's start.
RUN_ARGS = ("preset=smoke", f"methods={METHODS}", "reid.checkpoint_every=1")
RUN_NAME = "p0.5-seed0"  # the smoke preset's portion and seed

STAGE_LINE = re.compile(r"stage (\S+): (running|resuming) in (\S+)$")
DONE_LINE = re.compile(r"stage (\S+): done in [\d.]+ s -> (\S+)$")
CACHED_LINE = re.compile(r"stage (\S+): cached \((\S+)\)$")
REDO_LINE = re.compile(r"stage (\S+): (\S+) changed since it was recorded")
# A clear error: one line that names a file or folder (an absolute path) and says what to do.
PATH_IN_LINE = re.compile(r"/[\w.@\[\]-]+(/[\w.@\[\]-]+)+")
WAY_OUT = re.compile(r"\b(rerun|free some space|restore|delete|remove|use another)\b")


@dataclass
class Run:
    """What one subprocess did: exit code, its stderr lines, and when each stage line arrived."""

    args: list[str]
    returncode: int | None = None
    lines: list[str] = field(default_factory=list)
    stdout: str = ""
    signalled_in: str = ""  # the stage running when a fault landed ('' when none was sent)

    def folders(self, kind: re.Pattern[str], group: int) -> list[str]:
        """Stage ids (``kind/key``, the same wherever ``out`` is) of the lines that match."""
        return [ident(m.group(group)) for line in self.lines if (m := kind.search(line))]

    def started(self) -> list[str]:
        """Stage folders this run computed (ran or resumed)."""
        return self.folders(STAGE_LINE, 3)

    def done(self) -> list[str]:
        """Stage folders this run recorded as done."""
        return self.folders(DONE_LINE, 2)

    def redone_for_damage(self) -> list[str]:
        """Stage ids redone because an output (the file the line names) changed since it was recorded."""
        return [owner(m.group(2)) for line in self.lines if (m := REDO_LINE.search(line))]

    def running_stage(self, names: dict[str, str]) -> str:
        """The stage (instance name, via ``names``: id -> name) started last and not finished."""
        current = "startup"
        for line in list(self.lines):
            if m := STAGE_LINE.search(line):
                current = names.get(ident(m.group(3)), ident(m.group(3)))
            elif DONE_LINE.search(line):
                current = "between stages"
        return current

    def last_line(self) -> str:
        return next((line for line in reversed(self.lines) if line.strip()), "")

    def clear_error(self) -> bool:
        """Exit != 0, no traceback, and the last line names a path and a way out."""
        last = self.last_line()
        return (self.returncode not in (0, None) and not any(line.startswith("Traceback") for line in self.lines)
                and bool(PATH_IN_LINE.search(last)) and bool(WAY_OUT.search(last)))


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """One CPU thread everywhere (deterministic numbers), the fault shim first on the path."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "PYTHONPATH": os.pathsep.join([str(SHIM), str(REPO)])})
    env.pop("FAULT_ENOSPC_AT", None)
    env.pop("FAULT_COUNT_FILE", None)
    env.update(extra or {})
    return env


def _default_sigint() -> None:
    """Ctrl-C acts in the run even when this script was started in the background (``&``, nohup), where
    SIGINT is ignored and a child would inherit that and never see a SIGINT trial's signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out: Path, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Run]:
    """Start ``python -m pipelines.run`` on the smoke preset into ``out``; a thread collects stderr."""
    args = [sys.executable, "-m", "pipelines.run", *RUN_ARGS, f"out={out}", *extra_args]
    proc = subprocess.Popen(args, cwd=out.parent, env=environment(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_default_sigint)
    run = Run(args=args)

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            run.lines.append(line.rstrip("\n"))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    proc._fault_pump = thread  # type: ignore[attr-defined]
    return proc, run


def finish(proc: subprocess.Popen[str], run: Run, timeout: float = 600) -> Run:
    """Wait for the run; its stdout and every stderr line collected."""
    assert proc.stdout is not None
    stdout = proc.stdout.read()  # small (the results table); stderr belongs to the log thread
    proc.wait(timeout=timeout)
    proc._fault_pump.join(timeout=10)  # type: ignore[attr-defined]
    proc.stdout.close()
    run.stdout = stdout or ""
    run.returncode = proc.returncode
    return run


def run_once(out: Path, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Run:
    proc, run = start(out, extra_args, env)
    return finish(proc, run)


def ident(folder: str) -> str:
    """A stage folder as ``kind/key``: the same stage whichever run folder holds it."""
    return "/".join(Path(folder).parts[-2:])


def owner(path: str) -> str:
    """The stage id (``kind/key``) of a file under a run folder's ``cache/``."""
    parts = Path(path).parts
    at = len(parts) - 1 - parts[::-1].index("cache") if "cache" in parts else len(parts) - 3
    return "/".join(parts[at + 1: at + 3])


def run_with_signal(out: Path, stage_id: str, delay: float, sig: int, names: dict[str, str],
                    timeout: float = 600) -> Run:
    """Start a run, wait for stage ``stage_id`` (``kind/key``) to start or resume, ``delay`` seconds
    more, then send ``sig`` to the run's process group. Records the stage running when it was sent."""
    proc, run = start(out)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if stage_id in run.started():
            break
        time.sleep(0.005)
    if proc.poll() is None:
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            time.sleep(0.05)  # the log thread catches up on lines written before the signal
            run.signalled_in = run.running_stage(names)
    return finish(proc, run)


def results(out: Path) -> dict[str, Any] | None:
    path = out / RUN_NAME / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def metrics(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """What must equal the uninterrupted run bit for bit: each method's re-ID numbers and the
    generator's test-pair metrics."""
    if report is None:
        return None
    return {"methods": report.get("methods"), "generator": (report.get("generator") or {}).get("metrics")}


def stage_seconds(report: dict[str, Any]) -> dict[str, float]:
    return {name: float(s["seconds"]) for name, s in report["stages"].items()}
