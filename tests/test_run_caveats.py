"""A run's table says, from its own numbers, when it cannot measure augmentation (full or the oracle no
better than the kept images alone), and says nothing when it can."""

from __future__ import annotations

from pipelines import plan
from pipelines.config import load_pipeline_config
from pipelines.report import caveats, format_run


def _methods(**maps: float) -> dict[str, dict]:
    return {name: {"mAP": value, "rank1": value, "rank5": None} for name, value in maps.items()}


def test_a_table_in_which_missing_data_costs_nothing_says_so():
    # the default run's figures (README, "The default run"): none above the oracle, no full row
    notes = caveats(_methods(none=53.98, pona=51.82, copy=52.54, oracle=52.68), keeps_everything=False)
    assert len(notes) == 1
    assert notes[0].startswith("the oracle, a perfect pose transfer, does not beat the kept images alone "
                               "(oracle 52.68 <= none 53.98)")
    assert "preset=regime" in notes[0]
    notes = caveats(_methods(none=52.8, full=51.5, oracle=52.0), keeps_everything=False)
    assert [n.split(" (")[0] for n in notes] == ["keeping p of the images costs nothing here",
                                                 "the oracle, a perfect pose transfer, does not beat the kept images alone"]
    assert "(full 51.50 <= none 52.80)" in notes[0]


def test_a_regime_table_gets_no_note_and_missing_rows_give_none():
    assert caveats(_methods(none=40.95, copy=42.32, oracle=51.30, pona=47.82, full=54.32), keeps_everything=False) == []
    assert caveats(_methods(none=50.0, pona=40.0), keeps_everything=False) == []  # neither full nor oracle ran: nothing to read off
    assert caveats(_methods(none=50.0, oracle=50.0), keeps_everything=False) != []  # a tie wins nothing back


def test_the_full_portion_gets_no_note():
    # p = 1: nothing is missing, so every method trains the full set and ties (a sweep's reference column)
    tied = _methods(none=54.6, copy=54.6, oracle=54.6, pona=54.6, full=54.6)
    assert caveats(tied, keeps_everything=True) == []
    assert len(caveats(tied, keeps_everything=False)) == 2
    # the run decides it from its portion, once, where the stages do (pipelines.plan)
    assert plan.keeps_everything(load_pipeline_config("portion=1.0"))
    assert not plan.keeps_everything(load_pipeline_config("portion=0.5"))


def test_the_printed_table_carries_the_notes():
    methods = _methods(none=53.98, oracle=52.68)
    report = {"dataset": "synthmarket", "portion": 0.2, "seed": 0, "subsample": {"n_kept": 240, "n_missing": 982},
              "methods": methods, "caveats": caveats(methods, keeps_everything=False), "stages": {}}
    printed = format_run(report)
    assert "  note: the oracle, a perfect pose transfer, does not beat" in printed
    assert "note:" not in format_run({**report, "caveats": []})
