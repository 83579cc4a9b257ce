"""bench/regime_targets.py: the regime's bars checked on a sweep's rows, against hand-computed values."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import load_bench

regime = load_bench("regime_targets")

# seeds 0 and 1 at p = 0.2 and 0.5; at p = 1 every method is the full set's stage (one row, seed 0)
MAP = {
    0.2: {"none": (40.0, 41.0), "copy": (41.0, 42.5), "pona": (46.0, 47.0), "oracle": (50.0, 51.0), "full": (56.0, 57.0)},
    0.5: {"none": (48.0, 49.0), "copy": (50.0, 50.5), "pona": (50.5, 51.0), "oracle": (54.0, 54.5), "full": (56.0, 57.0)},
}


def _results(budget: str = "epochs", none_at_half: tuple[float, float] | None = None) -> pd.DataFrame:
    rows = []
    for portion, methods in MAP.items():
        for method, values in methods.items():
            if method == "none" and portion == 0.5 and none_at_half is not None:
                values = none_at_half
            rows += [{"budget": budget, "portion": portion, "seed": s, "method": method, "mAP": v}
                     for s, v in enumerate(values)]
    rows += [{"budget": budget, "portion": 1.0, "seed": 0, "method": m, "mAP": 56.0} for m in MAP[0.2]]
    return pd.DataFrame(rows)


def _by_target(table: pd.DataFrame) -> dict[str, pd.Series]:
    return {row["target"]: row for _, row in table.iterrows()}


def test_each_bar_against_hand_computed_values():
    table = _by_target(regime.all_targets(_results()))
    row = table["full - none >= 15"]  # 16, 16
    assert row["value"] == pytest.approx(16.0) and row["threshold"] == 15.0 and row["met"] and row["n_seeds"] == 2
    row = table["oracle - copy >= 5 and >= 5 x paired spread"]  # 9.0, 8.5: mean 8.75, sample std 0.3536, 5 x 1.768
    assert row["value"] == pytest.approx(8.75) and row["threshold"] == pytest.approx(5.0) and row["met"]
    row = table["copy - none <= (full - none) / 3"]  # 1.0, 1.5 -> 1.25 against 16 / 3
    assert row["value"] == pytest.approx(1.25) and row["threshold"] == pytest.approx(16 / 3) and row["met"]
    row = table["none rises with p (smallest rise between portions)"]  # 40.5 -> 48.5 -> 56: rises 8.0, 7.5
    assert row["value"] == pytest.approx(7.5) and row["met"] and row["n_seeds"] == 1
    row = table["full >= 40"]  # seeds 0 and 1 of the full set: 56, 57
    assert row["value"] == pytest.approx(56.5) and row["met"]
    generator = regime.all_targets(_results())
    generator = generator[generator["target"].str.startswith("pona")]
    # the generator's bars at p = 0.2 and 0.5, never at p = 1 (nothing is missing there)
    assert sorted(generator["portion"].unique()) == [0.2, 0.5]
    half = generator[(generator["portion"] == 0.5) & (generator["target"] == "pona - none >= (oracle - none) / 2")]
    # pona - none 2.5, 2.0 -> 2.25; oracle - none 6.0, 5.5 -> half 2.875: not met
    assert half["value"].item() == pytest.approx(2.25) and half["threshold"].item() == pytest.approx(2.875)
    assert not half["met"].item()


def test_bars_that_fail_say_so():
    table = _by_target(regime.regime_targets(_results(none_at_half=(38.0, 39.0))))
    row = table["none rises with p (smallest rise between portions)"]  # 40.5 -> 38.5 falls
    assert row["value"] == pytest.approx(-2.0) and not row["met"]
    wide_spread = _results()
    wide_spread.loc[(wide_spread["portion"] == 0.2) & (wide_spread["method"] == "oracle") & (wide_spread["seed"] == 1),
                    "mAP"] = 47.0  # oracle - copy 9.0, 4.5: mean 6.75 >= 5, but 5 x std 15.9
    row = _by_target(regime.regime_targets(wide_spread))["oracle - copy >= 5 and >= 5 x paired spread"]
    assert row["value"] == pytest.approx(6.75) and row["threshold"] == pytest.approx(5 * 4.5 / 2 ** 0.5)
    assert not row["met"]


def test_budgets_are_checked_apart_and_missing_rows_give_no_bar():
    both = pd.concat([_results("epochs"), _results("iterations", none_at_half=(38.0, 39.0))], ignore_index=True)
    table = regime.regime_targets(both)
    rises = table[table["target"].str.startswith("none rises")].set_index("budget")["met"]
    assert rises.to_dict() == {"epochs": True, "iterations": False}
    only_none = _results()
    only_none = only_none[only_none["method"].isin(["none", "full"])]
    targets = set(regime.all_targets(only_none)["target"])
    assert targets == {"full - none >= 15", "none rises with p (smallest rise between portions)", "full >= 40"}


def test_full_counts_only_the_seeds_that_trained_it():
    rows = _results()
    rows = rows[~((rows["method"] == "full") & (rows["seed"] == 1))]
    row = _by_target(regime.regime_targets(rows))["full >= 40"]
    assert row["value"] == pytest.approx(56.0) and row["n_seeds"] == 1


def test_gains_passed_in_are_the_ones_read():
    """all_targets computes the paired gains once and hands them to both checks: a check must read the
    gains it is given, not compute its own from the rows."""
    results = _results()
    given = regime.indexed_gains(results).copy()
    given.loc[("epochs", "full - none", 0.2), "mAP_mean"] = 20.0  # the rows say 16
    given.loc[("epochs", "pona - copy", 0.2), "mAP_mean"] = 9.0  # the rows say 4.75
    assert _by_target(regime.regime_targets(results, given))["full - none >= 15"]["value"] == 20.0
    assert _by_target(regime.regime_targets(results))["full - none >= 15"]["value"] == pytest.approx(16.0)
    generator = regime.generator_targets(results, given)
    row = generator[(generator["portion"] == 0.2) & (generator["target"] == "pona - copy > 3 x paired spread")]
    assert row["value"].item() == 9.0
