"""Each stage records what it was made on (CPU, GPU, torch threads), and a cached stage reports its
maker's, not the current run's: bf16 numbers depend on the thread count, and a stage cached by another
run carries that run's."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from pipelines import stage_cache
from pipelines.provenance import cpu_name, made_on
from pipelines.stage_cache import DONE, run_stage, stage_folder


@pytest.fixture
def threads():
    """Set torch's thread count for the test, then put it back; each test starts with no warning said."""
    before = torch.get_num_threads()
    stage_cache._THREAD_PAIRS_WARNED.clear()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _body(folder: Path) -> dict:
    (folder / "out.txt").write_text("x")
    return {"out": str(folder / "out.txt")}


def test_made_on_names_this_process() -> None:
    facts = made_on()
    assert facts["cpu"] == cpu_name() and facts["torch_threads"] == torch.get_num_threads()
    assert (facts["cuda"] is None) == (not torch.cuda.is_available())


def test_a_cached_stage_reports_its_makers_threads(tmp_path: Path, threads, caplog) -> None:
    threads(1)
    first = run_stage(tmp_path, "s", "k", {}, _body)
    assert not first.cached and first.made_on["torch_threads"] == 1
    record = json.loads((stage_folder(tmp_path, "s", "k") / DONE).read_text())
    assert record["made_on"]["torch_threads"] == 1
    threads(2)
    with caplog.at_level(logging.WARNING, logger="pipelines.stage_cache"):
        again = run_stage(tmp_path, "s", "k", {}, _body)
    assert again.cached and again.made_on["torch_threads"] == 1
    assert "cached from a run with 1 torch threads, this run has 2" in caplog.text
    assert run_stage(tmp_path, "t", "k", {}, _body_made_with(1, threads)).made_on["torch_threads"] == 1
    threads(2)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pipelines.stage_cache"):
        assert run_stage(tmp_path, "t", "k", {}, _body).cached
    assert "torch threads" not in caplog.text  # said once per process for a pair of counts, not per stage


def _body_made_with(n: int, threads):
    """A body that sets the process's thread count to ``n`` before recording (as a whole run would)."""
    def body(folder: Path) -> dict:
        threads(n)
        return _body(folder)
    return body


def test_no_warning_when_the_threads_agree(tmp_path: Path, threads, caplog) -> None:
    threads(1)
    run_stage(tmp_path, "s", "k", {}, _body)
    with caplog.at_level(logging.WARNING, logger="pipelines.stage_cache"):
        assert run_stage(tmp_path, "s", "k", {}, _body).cached
    assert "torch threads" not in caplog.text
