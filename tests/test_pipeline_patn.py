"""The pipeline's patn method (Table VI's PATN-augmented row): its own generator stages beside PoNA's,
a run end to end, checks before any stage, the presets, the sweep's paired gains."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import generator_view, load_pipeline_config
from pipelines.graph import build_stages, checks
from pipelines.run import main as run_main
from pipelines.run import run_pipeline
from pipelines.sweep import paired_gains
from pona_model.checkpoint_tags import GENERATOR_FORMAT
from pona_model.train_config import load_train_config
from runtime.checkpoint import load_checkpoint
from runtime.config import to_dict
from runtime.errors import ConfigError

TABLE_VI = "methods=none,patn,pona,copy"


def test_patn_gets_its_own_generator_stages_beside_pona(tmp_path):
    cfg = load_pipeline_config("preset=smoke", f"out={tmp_path}", TABLE_VI)
    stages = build_stages(cfg)
    for name in ("train_generator", "synthesize", "evaluate_generator"):
        pona, patn = stages[name], stages[f"{name}[patn]"]
        assert pona.kind == patn.kind and pona.key != patn.key
    assert stages["train_generator[patn]"].inputs["train"]["generator"]["arch"] == "patn"
    assert stages["train_generator"].inputs["train"]["generator"]["arch"] == "pona"
    assert stages["merge[patn]"].deps == ("prepare_data", "subsample", "synthesize[patn]")
    assert stages["train_reid[patn]"].deps[0] == "merge[patn]"
    assert "evaluate_reid[patn]" in stages
    # a PATN-only run builds no PoNA generator; at p = 1 patn trains on the reduced set, as none
    only = build_stages(load_pipeline_config("preset=smoke", f"out={tmp_path}", "methods=none,patn"))
    assert "train_generator" not in only and "train_generator[patn]" in only
    full = build_stages(load_pipeline_config("preset=smoke", f"out={tmp_path}", TABLE_VI, "portion=1.0"))
    assert "synthesize[patn]" not in full and "train_reid[patn]" not in full


def test_generator_view_swaps_only_the_generator_section(tmp_path):
    cfg = load_pipeline_config("preset=smoke", f"out={tmp_path}")
    view = generator_view(cfg, "patn")
    assert view.generator is cfg.patn and view.reid is cfg.reid and cfg.generator.train.generator.arch == "pona"
    assert generator_view(cfg, "pona") is cfg


def test_sections_must_build_their_own_architecture(tmp_path):
    with pytest.raises(ConfigError, match=r"patn\.train\.generator\.arch must be patn"):
        load_pipeline_config(f"out={tmp_path}", "patn.train.generator.arch=pona", "patn.train.generator.n_blocks=2")
    with pytest.raises(ConfigError, match=r"generator\.train\.generator\.arch must be pona"):
        load_pipeline_config("preset=smoke", f"out={tmp_path}", "generator.train.generator.arch=patn")


def test_default_preset_names_the_patn_synth_preset():
    cfg = load_pipeline_config()
    assert cfg.patn.train_on == cfg.generator.train_on  # the two rows differ in the generator only
    ours = to_dict(cfg.patn.train)
    theirs = to_dict(load_train_config("preset=patn-synth"))
    assert {k: v for k, v in ours.items() if k not in ("out", "data")} == {
        k: v for k, v in theirs.items() if k not in ("out", "data")}


def test_a_pona_checkpoint_given_to_patn_fails_before_any_stage(trained, tmp_path, capsys):
    cfg = load_pipeline_config("preset=smoke", f"out={tmp_path}", "methods=none,patn", f"patn.checkpoint={trained}")
    with pytest.raises(ValueError, match=r"patn\.checkpoint .* holds a pona generator, the patn method needs a patn"):
        checks(cfg)
    assert run_main(["preset=smoke", f"out={tmp_path}", "methods=none,patn", f"patn.checkpoint={trained}"]) == 2
    assert "holds a pona generator" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_patn_run_end_to_end(tmp_path):
    cfg = load_pipeline_config("preset=smoke", f"out={tmp_path}", "methods=none,patn")
    report = run_pipeline(cfg)
    results = json.loads(Path(report["results_path"]).read_text())
    assert set(results["methods"]) == {"none", "patn"}
    assert 0 <= results["methods"]["patn"]["mAP"] <= 100
    gen = results["patn_generator"]
    assert gen["trained"] and "generator" not in results
    checkpoint = Path(report["results_path"]).parent / gen["checkpoint"]  # relative to results.json's folder
    assert load_checkpoint(checkpoint, GENERATOR_FORMAT)["config"]["generator"]["arch"] == "patn"
    counts = results["patn_synthesis"]
    assert counts.get("generated", 0) + counts.get("skipped", 0) == results["subsample"]["n_missing"]
    assert -1 <= gen["metrics"]["ssim"] <= 1


def test_sweep_pairs_patn_with_none_and_pona():
    rows = [{"portion": 0.2, "seed": s, "method": m, "mAP": v, "rank1": 0.0}
            for s, values in ((0, (1.0, 3.0, 4.0)), (1, (2.0, 5.0, 5.5)))
            for m, v in zip(("none", "patn", "pona"), values)]
    gains = paired_gains(pd.DataFrame(rows)).set_index("gain")
    assert gains.loc["patn - none", "mAP_mean"] == pytest.approx(2.5)
    assert gains.loc["pona - patn", "mAP_mean"] == pytest.approx(0.75)
