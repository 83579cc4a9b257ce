"""A full disk: one line naming the folder, its free space and what the stage needs; nothing
half-written is recorded as done; the rerun after freeing space resumes and gives the same results."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.config import load_pipeline_config
from pipelines.run import main as run_main
from pipelines.run import run_pipeline
from pipelines.stage_cache import DONE, run_stage
from runtime.atomic import atomic_write_text
from runtime.config import error_line
from runtime.diskspace import DiskFullError

NONE_ONLY = ("preset=smoke", "methods=[none]", "evaluate_generator=false", "augment.link=copy")


def _no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_an_atomic_write_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    """Defect: a full disk surfaced as a bare OSError from deep inside a writer, naming no folder."""
    monkeypatch.setattr("runtime.atomic.os.replace", _no_space)
    with pytest.raises(DiskFullError) as caught:
        atomic_write_text(tmp_path / "out" / "a.json", "{}")
    line = error_line(caught.value)
    assert line.startswith(f"no space left on the disk holding {tmp_path / 'out'} while writing a.json (")
    assert " free): free some space and rerun" in line and caught.value.errno == errno.ENOSPC
    assert list((tmp_path / "out").iterdir()) == []  # the temporary file is gone


def test_a_stage_that_fills_the_disk_is_not_recorded_and_resumes(tmp_path: Path) -> None:
    def body(folder: Path, fail_after: int | None = None) -> dict:
        for i in range(4):
            path = folder / f"{i}.bin"
            if path.exists():  # resumes: what was written stays
                continue
            if fail_after is not None and i == fail_after:
                _no_space()
            path.write_bytes(b"x" * 1000)
        return {"files": [str(folder / f"{i}.bin") for i in range(4)]}

    run_stage(tmp_path, "s", "earlier", {}, body)  # a finished stage of the kind: 4,000 bytes
    with pytest.raises(DiskFullError) as caught:
        run_stage(tmp_path, "s", "k", {}, lambda f: body(f, fail_after=2))
    folder = tmp_path / "s" / "k"
    line = error_line(caught.value)
    assert line.startswith(f"stage s: no space left on the disk holding {folder} (")
    assert "the stage needs about 4.0 kB in all (the last s stage's outputs), 2.0 kB written" in line
    assert line.endswith("it was not recorded as done: free some space and rerun, it resumes where it stopped")
    assert not (folder / DONE).exists() and (folder / "1.bin").is_file()  # partial outputs kept for the rerun
    again = run_stage(tmp_path, "s", "k", {}, body)
    assert not again.cached and all(Path(p).stat().st_size == 1000 for p in again.result["files"])


def test_a_run_that_fills_the_disk_mid_stage_fails_in_one_line_and_the_rerun_matches(tmp_path: Path, monkeypatch,
                                                                                      capsys) -> None:
    """The merge copies images; the disk fills on its fifth. Then, with space again, the same command
    finishes, reusing what was done, with the results of a run that never stopped."""
    reference = run_pipeline(load_pipeline_config(*NONE_ONLY, f"out={tmp_path / 'reference'}"))
    out = tmp_path / "run"
    copies = {"n": 0}
    real_copy = shutil.copy2

    def copy_until_full(src, dst, *args, **kwargs):
        copies["n"] += 1
        if copies["n"] == 5:
            _no_space()
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr("augment.merge.shutil.copy2", copy_until_full)
    capsys.readouterr()  # the reference run's progress bars
    assert run_main([*NONE_ONLY, f"out={out}"]) == 1
    err = capsys.readouterr().err.strip()
    merge = next((out / "cache" / "merge").iterdir())
    assert err.count("\n") == 0 and err.startswith(f"python -m pipelines.run: error: stage merge: no space left on "
                                                   f"the disk holding {merge} (")
    assert "free); the stage needs more than the" in err and "free some space and rerun" in err
    assert not (merge / DONE).exists()
    assert (out / "cache" / "subsample").is_dir() and all((d / DONE).is_file() for d in (out / "cache" / "subsample").iterdir())

    monkeypatch.setattr("augment.merge.shutil.copy2", real_copy)  # space freed
    assert run_main([*NONE_ONLY, f"out={out}"]) == 0
    results = json.loads((out / "p0.5-seed0" / "results.json").read_text())
    assert {n for n, s in results["stages"].items() if s["cached"]} == {"prepare_data", "subsample"}
    assert results["methods"] == reference["methods"]


def test_the_error_is_the_last_line_even_with_a_progress_bar_open(tmp_path: Path) -> None:
    """Defect: a full disk inside a loop with a progress bar (synthesis's shards) left the bar open; it was
    closed, and redrawn, only when collected after the error line, so the bar was the last line shown.
    A real process: the bar's redraw at collection or exit is what the user saw."""
    script = textwrap.dedent(f"""
        from augment.scheduler import map_tasks
        from runtime.config import entry_point
        from runtime.diskspace import disk_full_error

        def shard(i):
            if i == 1:
                raise disk_full_error({str(tmp_path)!r}, "000001.jpg")
            return 1

        @entry_point("prog")
        def main(argv):
            return sum(map_tasks(None, shard, [0, 1, 2], desc="synthesising"))

        raise SystemExit(main([]))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1].startswith(f"prog: error: no space left on the disk holding {tmp_path} while writing "
                                "000001.jpg"), lines[-3:]
    assert lines[-1].endswith("free some space and rerun (--debug shows the traceback)")
    assert any(line.startswith("synthesising:") for line in lines)  # the bar was there, and drawn before
