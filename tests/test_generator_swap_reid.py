"""bench/generator_swap_reid.py: another generator's rows in a reference sweep, controls reused only when
the rows both sweeps ran agree exactly; gains and targets against hand-computed values."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.conftest import load_bench

swap = load_bench("generator_swap_reid")


def _rows(values: dict[tuple[str, int], float]) -> pd.DataFrame:
    return pd.DataFrame([{"budget": "epochs", "portion": 0.2, "seed": seed, "method": method, "mAP": mAP}
                         for (method, seed), mAP in values.items()])


REFERENCE = _rows({("none", 0): 40.0, ("none", 1): 41.0, ("copy", 0): 42.0, ("copy", 1): 43.0,
                   ("oracle", 0): 50.0, ("oracle", 1): 51.0, ("pona", 0): 44.0, ("pona", 1): 45.0})


def test_the_swapped_generator_replaces_only_the_generators_rows():
    swapped = _rows({("none", 0): 40.0, ("none", 1): 41.0, ("pona", 0): 46.0, ("pona", 1): 47.5})
    merged = swap.combine(REFERENCE, swapped)
    pona = merged[merged["method"] == "pona"].set_index("seed")["mAP"]
    assert pona.to_dict() == {0: 46.0, 1: 47.5}
    assert len(merged) == len(REFERENCE)
    assert merged[merged["method"] == "copy"]["mAP"].tolist() == [42.0, 43.0]
    targets = swap.targets(merged).set_index("target")
    # pona - copy: 4.0 and 4.5 -> mean 4.25, sample std 0.3536, 3 x = 1.0607
    row = targets.loc["pona - copy > 3 x paired spread"]
    assert row["value"] == pytest.approx(4.25) and row["threshold"] == pytest.approx(3 * 0.5 / 2 ** 0.5)
    assert bool(row["met"])
    # pona - none: 6.0 and 6.5 -> 6.25; half of oracle - none: 5.0 -> met
    row = targets.loc["pona - none >= (oracle - none) / 2"]
    assert row["value"] == pytest.approx(6.25) and row["threshold"] == pytest.approx(5.0) and bool(row["met"])


def test_a_half_oracle_short_gain_is_not_met():
    swapped = _rows({("none", 0): 40.0, ("none", 1): 41.0, ("pona", 0): 44.9, ("pona", 1): 45.9})
    row = swap.targets(swap.combine(REFERENCE, swapped)).set_index("target").loc["pona - none >= (oracle - none) / 2"]
    assert row["value"] == pytest.approx(4.9) and not bool(row["met"])


def test_a_control_that_moved_refuses_the_merge():
    swapped = _rows({("none", 0): 40.0, ("none", 1): 41.0001, ("pona", 0): 46.0, ("pona", 1): 47.0})
    with pytest.raises(SystemExit, match=re.escape("none at p = 0.2, seed 1, epochs budget: mAP 41.0001 here, 41.0 in the")):
        swap.combine(REFERENCE, swapped)


def test_a_swapped_sweep_without_a_control_is_refused():
    with pytest.raises(SystemExit, match="shares no control row"):
        swap.combine(REFERENCE, _rows({("pona", 0): 46.0}))


def test_one_seed_has_no_spread_to_beat_and_p1_has_no_row():
    one_seed = REFERENCE[REFERENCE["seed"] == 0]
    at_full = one_seed.assign(portion=1.0)
    table = swap.targets(pd.concat([one_seed, at_full], ignore_index=True)).set_index("target")
    assert list(table["portion"]) == [0.2, 0.2]  # p = 1 is left out: nothing is missing there
    row = table.loc["pona - copy > 3 x paired spread"]
    assert row["value"] == pytest.approx(2.0) and pd.isna(row["threshold"]) and not bool(row["met"])
    row = table.loc["pona - none >= (oracle - none) / 2"]  # 4.0 against 10.0 / 2
    assert row["value"] == pytest.approx(4.0) and row["threshold"] == pytest.approx(5.0) and not bool(row["met"])
