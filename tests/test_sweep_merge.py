"""Merging sweeps run in parts gives the table one sweep over the union would give."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.sweep import paired_gains
from pipelines.sweep_merge import main, merge_results, read_results


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["budget", "portion", "seed", "method", "mAP"])
    frame["rank1"] = frame["mAP"]
    frame.to_csv(path, index=False)
    return path


def _parts(tmp_path):
    # part A: every method at p = 0.2; part B: none and full over p (full at 0.2 again, same run)
    a = _write(tmp_path / "a" / "results.csv", [("epochs", 0.2, s, m, v + s) for s in (0, 1)
                                                for m, v in (("none", 40.0), ("pona", 47.0), ("full", 60.0))])
    b = _write(tmp_path / "b" / "results.csv", [("epochs", p, s, m, v + s) for s in (0, 1)
                                                for p, m, v in ((0.2, "none", 40.0), (0.2, "full", 60.0),
                                                                (0.5, "none", 52.0), (1.0, "none", 60.0))])
    return a, b


def test_merge_keeps_each_run_once_and_gains_pair_by_seed(tmp_path):
    a, b = _parts(tmp_path)
    merged = merge_results([read_results(a), read_results(b)])
    assert len(merged) == 6 + 4  # 6 in A, B adds p = 0.5 and 1.0 for two seeds; its p = 0.2 rows are A's
    gains = paired_gains(merged).set_index(["budget", "gain", "portion"])
    assert gains.loc[("epochs", "pona - none", 0.2), "mAP_mean"] == pytest.approx(7.0)
    assert gains.loc[("epochs", "pona - none", 0.2), "mAP_std"] == pytest.approx(0.0)


def test_disagreeing_parts_are_refused_with_both_files_named(tmp_path):
    a, _ = _parts(tmp_path)
    c = _write(tmp_path / "c" / "results.csv", [("epochs", 0.2, 0, "none", 41.0)])
    with pytest.raises(ValueError, match=r"seed 0, none: the parts disagree .*a/results.csv.*c/results.csv"):
        merge_results([read_results(a), read_results(c)])


def test_the_command_writes_tables_and_sources_and_never_a_foreign_folder(tmp_path, capsys):
    a, b = _parts(tmp_path)
    out = tmp_path / "merged"
    assert main([str(a), str(b), f"out={out}"]) == 0
    text = (out / "table.md").read_text()
    assert "| none | 40.5 ± 0.7 | 52.5 ± 0.7 | 60.5 ± 0.7 |" in text
    sources = json.loads((out / "merged_from.json").read_text())["sources"]
    assert [s["file"] for s in sources] == [str(a), str(b)] and all(len(s["sha256"]) == 64 for s in sources)
    assert (out / "map_vs_portion.png").is_file()
    assert main([str(a), f"out={out}"]) == 0  # its own folder: rewritten
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    capsys.readouterr()
    assert main([str(a), f"out={foreign}"]) == 2
    assert "was not written by" in capsys.readouterr().err and (foreign / "notes.txt").read_text() == "keep"
    assert main([str(tmp_path / "nope.csv"), f"out={tmp_path / 'x'}"]) == 2
    assert main([str(a)]) == 2  # no out=
