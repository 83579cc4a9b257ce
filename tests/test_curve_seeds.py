"""``bench/reid_curve_seeds.py``: several seeds' fine-tune curves become mean ± spread per method and
gains paired by seed, per step count, as the sweep pairs them."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import load_bench


def _curve() -> pd.DataFrame:
    # seed s moves every method by s (paired), full - none = 10, oracle - copy = 4 at 400 steps
    values = {"none": 30.0, "copy": 30.0, "oracle": 34.0, "full": 40.0}
    rows = [{"variant": "v", "seed": s, "portion": 0.2, "method": m, "steps": 400, "mAP": v + s, "rank1": 0.0}
            for s in (0, 1, 2) for m, v in values.items()]
    # another portion of the same variant: never mixed into p = 0.2's cells
    rows.append({"variant": "v", "seed": 0, "portion": 0.5, "method": "none", "steps": 400, "mAP": 99.0, "rank1": 0.0})
    rows.append({"variant": "other", "seed": 0, "portion": 0.2, "method": "none", "steps": 400, "mAP": 99.0,
                 "rank1": 0.0})
    # a rerun of seed 2's full set: it replaces the first row of that seed, it is not a fourth seed
    rows.insert(0, {"variant": "v", "seed": 2, "portion": 0.2, "method": "full", "steps": 400, "mAP": 0.0,
                    "rank1": 0.0})
    return pd.DataFrame(rows)


def test_seed_tables_pair_gains_by_seed() -> None:
    summary, gains = load_bench("reid_curve_seeds").seed_tables(_curve(), "v")
    full = summary[summary["method"] == "full"].iloc[0]
    assert (full["mAP_mean"], full["n_seeds"]) == (pytest.approx(41.0), 3)  # 40, 41, 42; the rerun kept, not 0
    by_gain = gains.set_index("gain")
    assert by_gain.loc["full - none", "mAP_mean"] == pytest.approx(10.0)
    assert by_gain.loc["oracle - copy", "mAP_mean"] == pytest.approx(4.0)
    assert by_gain.loc["oracle - copy", "mAP_std"] == pytest.approx(0.0)  # the seed moved both alike
    assert load_bench("reid_curve_seeds").method_order(summary) == ["none", "copy", "oracle", "full"]  # the experiment table's order
    table = load_bench("reid_curve_seeds").markdown(gains, "gain", "{:+.1f}", ["full - none", "oracle - copy"])
    assert "| full - none | +10.0 ± 0.0 (3) |" in table


def test_unknown_variant_names_the_known_ones() -> None:
    with pytest.raises(SystemExit, match=r"no rows of variant 'w'.*other, v"):
        load_bench("reid_curve_seeds").seed_tables(_curve(), "w")
    with pytest.raises(SystemExit, match=r"no rows at portion 0.1; it has portions 0.2, 0.5"):
        load_bench("reid_curve_seeds").seed_tables(_curve(), "v", 0.1)


def test_portion_selects_its_own_rows() -> None:
    summary, _ = load_bench("reid_curve_seeds").seed_tables(_curve(), "v", 0.5)
    assert summary[["method", "mAP_mean", "n_seeds"]].values.tolist() == [["none", 99.0, 1]]
