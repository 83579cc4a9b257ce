"""Both re-ID step budgets in one sweep: runs keep apart, tables say which budget each number is."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from pipelines.config import load_pipeline_config
from pipelines.sweep import paired_gains, parse, summary_table, write_sweep
from runtime.errors import ConfigError


def test_budget_runs_have_their_own_names_and_parse():
    assert load_pipeline_config("portion=0.2").run_name == "p0.2-seed0"
    assert load_pipeline_config("portion=0.2", "reid.budget=iterations").run_name == "p0.2-seed0-iterations"
    _, _, _, budgets = parse(["budgets=epochs,iterations", "portions=0.2"])
    assert budgets == ["epochs", "iterations"]
    assert parse(["reid.budget=iterations"])[3] == ["iterations"]
    with pytest.raises(ConfigError, match="budgets"):
        parse(["budgets=epochs,steps"])


def test_gains_and_tables_are_per_budget(tmp_path):
    rows = []
    for budget, extra in (("epochs", 0.0), ("iterations", 10.0)):
        for seed, (none, pona) in enumerate(((2.0, 7.0), (4.0, 6.0))):
            rows += [(budget, 0.2, seed, "none", none + extra), (budget, 0.2, seed, "pona", pona + extra)]
    results = pd.DataFrame(rows, columns=["budget", "portion", "seed", "method", "mAP"])
    results["rank1"] = results["mAP"]
    gains = paired_gains(results).set_index(["budget", "gain", "portion"])
    assert gains.loc[("epochs", "pona - none", 0.2), "mAP_mean"] == pytest.approx(3.5)  # 5 and 2
    assert gains.loc[("iterations", "pona - none", 0.2), "mAP_mean"] == pytest.approx(3.5)
    summary = summary_table(results).set_index(["budget", "method", "portion"])
    assert summary.loc[("iterations", "none", 0.2), "mAP_mean"] == pytest.approx(13.0)
    fake = {"reports": [{"reid_budget": b, "portion": p, "seed": s, "methods": {m: {"mAP": v, "rank1": v}}}
                        for b, p, s, m, v in rows]}
    paths = write_sweep(tmp_path, fake)
    text = paths["markdown"].read_text()
    assert "reid.budget=epochs" in text and "reid.budget=iterations" in text
    assert "| none | 3.0 ± 1.4 |" in text and "| none | 13.0 ± 1.4 |" in text
    assert paths["plot_iterations"].is_file()


def test_under_iterations_the_full_set_trains_the_step_budget_itself():
    from pipelines.graph import build_stages
    from reid.step_budget import step_schedule

    epochs = build_stages(load_pipeline_config("preset=smoke", "methods=[none,full]"))
    iterations = build_stages(load_pipeline_config("preset=smoke", "methods=[none,full]", "reid.budget=iterations"))
    # the full set's epochs run cannot serve: torchreid's identity sampler ends a pass a batch early at
    # random, so its step count is known only after it ran; under iterations it trains exactly the budget
    assert iterations["train_reid[full]"].key != epochs["train_reid[full]"].key
    assert iterations["train_reid[none]"].key != epochs["train_reid[none]"].key
    reid = dataclasses.replace(load_pipeline_config("preset=smoke", "reid.budget=iterations").reid, budget_steps=42)
    assert reid.optim.epochs == 2 and reid.optim.step_size == 1
    schedule = step_schedule(reid, [40, 60])  # RandomSampler, batch 16: 6 batches per pass
    with pytest.raises(ConfigError, match="budget_steps"):  # the pipeline counts it on the full set
        load_pipeline_config("preset=smoke", "reid.budget=iterations", "reid.budget_steps=42")
    assert (schedule.steps, schedule.decay_every, schedule.per_pass, schedule.passes) == (42, 21, 6, 7)


def test_one_pretraining_serves_both_budgets():
    from pipelines.graph import build_stages

    args = ("preset=smoke", "reid.model.weights=auxiliary", "methods=[none,full]")
    epochs = build_stages(load_pipeline_config(*args))
    iterations = build_stages(load_pipeline_config(*args, "reid.budget=iterations"))
    assert iterations["pretrain_reid"].key == epochs["pretrain_reid"].key


def test_a_sweep_keeps_the_presets_methods_and_adds_the_full_set():
    # the regime preset's oracle used to be dropped for a fixed none,pona,copy,full list
    assert parse(["preset=regime"])[0].methods == ["none", "copy", "oracle", "pona", "full"]
    assert parse([])[0].methods == [*load_pipeline_config().methods, "full"]
    assert parse(["methods=none,pona"])[0].methods == ["none", "pona"]  # asked for: kept as asked
