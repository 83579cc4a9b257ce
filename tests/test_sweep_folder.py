"""A sweep's tables never overwrite another sweep's, nor files no sweep wrote."""

from __future__ import annotations

import yaml

from pipelines.config import load_pipeline_config
from pipelines.sweep import SWEEP_RECORD, claim_folder, default_folder, parse, sweep_record


def _record(*args: str) -> dict:
    base, portions, seeds, budgets = parse(["preset=smoke", *args])
    return sweep_record(base, portions, seeds, budgets)


def test_the_default_name_says_the_grid_and_a_budget_other_than_epochs():
    assert default_folder("runs", [0.2, 0.5], [0, 1, 2], ["epochs"]).name == "sweep-p0.2_0.5-seeds0_1_2"
    assert default_folder("runs", [1.0], [0], ["epochs", "iterations"]).name == "sweep-p1-seeds0-epochs_iterations"


def test_the_record_holds_what_changes_numbers_and_not_how_the_sweep_runs():
    plain = _record("portions=0.2", "seeds=0,1")
    assert plain == _record("portions=0.2", "seeds=0,1", "dask.scheduler=local", "verify=size", "out=elsewhere")
    assert plain != _record("portions=0.2", "seeds=0,1", "methods=none,copy")
    assert plain != _record("portions=0.2", "seeds=0,1", "pretrain.seed=1")
    assert plain != _record("portions=0.2", "seeds=0")
    assert plain["seeds"] == [0, 1] and "portion" not in plain["config"] and "dask" not in plain["config"]
    assert load_pipeline_config("preset=smoke").generator.checkpoint == plain["config"]["generator"]["checkpoint"]


def test_a_rerun_reuses_its_folder_and_another_sweep_takes_the_next_name(tmp_path):
    default = tmp_path / "sweep-p0.2-seeds0"
    mine, theirs = _record("portions=0.2", "seeds=0"), _record("portions=0.2", "seeds=0", "methods=none,copy")
    assert claim_folder(default, mine) == default
    assert yaml.safe_load((default / SWEEP_RECORD).read_text()) == mine  # claimed before anything runs
    (default / "table.md").write_text("mine")
    assert claim_folder(default, mine) == default  # the same sweep again: its own tables, rewritten later
    other = claim_folder(default, theirs)
    assert other == tmp_path / "sweep-p0.2-seeds0-2" and (default / "table.md").read_text() == "mine"
    assert claim_folder(default, theirs) == other  # and that sweep's rerun finds its own folder
    assert claim_folder(default, _record("portions=0.2", "seeds=0", "pretrain.seed=1")).name.endswith("-3")


def test_files_no_sweep_wrote_are_left_alone(tmp_path):
    legacy = tmp_path / "sweep-p0.2-seeds0"  # tables from before the record existed, or a user's notes
    legacy.mkdir()
    (legacy / "results.csv").write_text("keep")
    (tmp_path / "sweep-p0.2-seeds0-2").write_text("a file, not a folder")
    broken = tmp_path / "sweep-p0.2-seeds0-3"
    broken.mkdir()
    (broken / SWEEP_RECORD).write_text("{unclosed")
    folder = claim_folder(legacy, _record("portions=0.2", "seeds=0"))
    assert folder == tmp_path / "sweep-p0.2-seeds0-4"
    assert (legacy / "results.csv").read_text() == "keep" and (broken / SWEEP_RECORD).read_text() == "{unclosed"
    empty = tmp_path / "sweep-p0.5-seeds0"
    empty.mkdir()
    assert claim_folder(empty, _record("portions=0.5", "seeds=0")) == empty  # an empty folder is free
