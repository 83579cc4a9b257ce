"""Re-ID pretraining on the auxiliary identities in the pipeline: one shared stage, the start of every
re-ID training when reid.model.weights=auxiliary, recorded in results.json."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import torch

from pipelines.config import load_pipeline_config
from pipelines.graph import build_stages
from pipelines.run import run_pipeline
from reid.metrics import SkippedQueryWarning
from reid.trainer import REID_FORMAT
from runtime.checkpoint import load_checkpoint

FAST = ("preset=smoke", "methods=[none]", "evaluate_generator=false", "reid.model.backbone=resnet18",
        "reid.model.weights=auxiliary", "auxiliary.n_ids=6", "pretrain.epochs=1", "pretrain.step_size=1")


def test_pretraining_is_one_stage_shared_by_portions_seeds_and_methods():
    a = build_stages(load_pipeline_config(*FAST))
    b = build_stages(load_pipeline_config(*FAST, "portion=0.8", "seed=3", "methods=none,pona,copy,full"))
    for name in ("prepare_auxiliary", "pretrain_reid"):
        assert a[name].key == b[name].key
    assert "pretrain_reid" in a["train_reid[none]"].deps
    assert all("pretrain_reid" in s.deps for n, s in b.items() if n.startswith("train_reid"))
    plain = build_stages(load_pipeline_config(*FAST, "reid.model.weights=random"))
    assert "pretrain_reid" not in plain and "prepare_auxiliary" not in plain
    other = build_stages(load_pipeline_config(*FAST, "pretrain.epochs=2"))
    assert other["pretrain_reid"].key != a["pretrain_reid"].key
    assert other["train_reid[none]"].key != a["train_reid[none]"].key  # a new start retrains


def test_run_starts_from_the_pretrained_trunk_and_says_so(tmp_path):
    cfg = load_pipeline_config(*FAST, f"out={tmp_path}", "reid.precision=fp32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedQueryWarning)
        report = run_pipeline(cfg)
    results = json.loads(Path(report["results_path"]).read_text())  # its paths: relative to its folder
    assert results["reid_start"] == "auxiliary" and results["pretrain"]["identities"] == 6
    start = report["pretrain"]["checkpoint"]  # the returned report's paths are absolute
    assert os.path.normpath(Path(report["results_path"]).parent / results["pretrain"]["checkpoint"]) == start
    pretrained = torch.load(start, weights_only=True)["model"]
    train = Path(report["stages"]["train_reid[none]"]["folder"]) / "train" / "checkpoint.pt"
    state = load_checkpoint(train, REID_FORMAT)  # paths in the run folder: stored relative to the checkpoint
    assert state["weights_init"].startswith("checkpoint: ") and os.path.relpath(start, train.parent) in state["weights_init"]
    assert state["config"]["model"]["weights"] == start
    from reid.model import ModelConfig, build_model

    model, note = build_model(ModelConfig(weights=start, backbone="resnet18"), 4)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, pretrained["backbone.layer4.1.conv2.weight"])
    assert torch.equal(model.backbone.bn1.running_mean, pretrained["backbone.bn1.running_mean"])
    assert note.startswith("checkpoint: ")
    assert 0 <= results["methods"]["none"]["mAP"] <= 100


def test_weights_auxiliary_outside_a_pipeline_names_the_fix(tmp_path):
    from reid.model import ModelConfig, build_model
    from runtime.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="pretrain_reid"):
        build_model(ModelConfig(weights="auxiliary", backbone="resnet18"), n_classes=3)
    with pytest.raises(MissingWeightsError, match="no such file"):
        build_model(ModelConfig(weights=str(tmp_path / "none.pt"), backbone="resnet18"), n_classes=3)


def test_iteration_budget_reads_the_full_set_size():
    stages = build_stages(load_pipeline_config(*FAST, "reid.budget=iterations", "methods=[none,full]"))
    assert "prepare_data" in stages["train_reid[none]"].deps
    assert stages["train_reid[full]"].deps[0] == "prepare_data"
    epochs = build_stages(load_pipeline_config(*FAST, "methods=[none,full]"))
    assert "prepare_data" not in epochs["train_reid[none]"].deps
    assert epochs["train_reid[none]"].key != stages["train_reid[none]"].key


def test_augment_label_reaches_the_training_config():
    from pipelines.stages import train_reid

    cfg = load_pipeline_config(*FAST, "augment.label=smooth", "augment.label_epsilon=0.3")
    loss = train_reid.reid_config(cfg, synthesised=True).loss
    assert (loss.generated_label, loss.generated_epsilon) == ("smooth", 0.3)
    assert train_reid.reid_config(cfg, synthesised=False).loss.generated_label == "hard"
    plain = build_stages(load_pipeline_config(*FAST, "methods=[none,copy]", "portion=0.5"))
    smooth = build_stages(load_pipeline_config(*FAST, "methods=[none,copy]", "portion=0.5", "augment.label=smooth"))
    assert smooth["train_reid[copy]"].key != plain["train_reid[copy]"].key  # the rule reaches synthesised sets
    assert smooth["train_reid[none]"].key == plain["train_reid[none]"].key  # and only them: none is shared
    with pytest.raises(ValueError, match=r"augment\.label"):
        load_pipeline_config(*FAST, "reid.loss.generated_label=lsro")


def test_a_run_on_a_local_cluster_goes_through_the_dask_graph(tmp_path, monkeypatch):
    from pipelines import sweep

    calls = []

    def fake_sweep(base, portions, seeds):
        calls.append((base.dask.scheduler, list(portions), list(seeds)))
        return {"reports": [{"methods": {}, "portion": base.portion, "seed": base.seed}]}

    monkeypatch.setattr(sweep, "run_sweep", fake_sweep)
    report = run_pipeline(load_pipeline_config(*FAST, f"out={tmp_path}", "dask.scheduler=local", "portion=0.4",
                                               "seed=2"))
    assert calls == [("local", [0.4], [2])] and Path(report["results_path"]).is_file()


def test_a_run_on_the_dask_graph_is_checked_once_and_its_results_written_once(tmp_path, monkeypatch):
    """The dask path went through the sweep, which checked the config again and wrote results.json
    before the run wrote it a second time."""
    import contextlib

    from pipelines import run, sweep

    calls = {"checks": 0, "writes": 0}

    def count(key, value=None):
        def counted(*args, **kwargs):
            calls[key] += 1
            return value if value is not None else Path(tmp_path / "results.json")
        return counted

    monkeypatch.setattr(run, "checks", count("checks", ()))
    monkeypatch.setattr(sweep, "checks", count("checks", ()))
    monkeypatch.setattr(run, "write_run_report", count("writes"))
    monkeypatch.setattr(sweep, "write_run_report", count("writes"))
    monkeypatch.setattr(sweep, "build_stages", lambda cfg: {})  # no stage runs: only the bookkeeping is counted
    monkeypatch.setattr(sweep, "run_results", lambda cfg, stages, results: {"methods": {}})
    monkeypatch.setattr(sweep, "dask_client", lambda *args: contextlib.nullcontext(None))
    run.run_pipeline(load_pipeline_config(*FAST, f"out={tmp_path}", "dask.scheduler=local"))
    assert calls == {"checks": 1, "writes": 1}


def test_an_auxiliary_subset_is_its_own_stage_and_the_default_keeps_its_key():
    default = build_stages(load_pipeline_config(*FAST))["pretrain_reid"]
    spelled = build_stages(load_pipeline_config(*FAST, "pretrain.images=all", "pretrain.per_id=0"))["pretrain_reid"]
    assert spelled.key == default.key and "subset" not in default.inputs  # caches of the full-set start stay valid
    view = build_stages(load_pipeline_config(*FAST, "pretrain.images=one_view"))
    capped = build_stages(load_pipeline_config(*FAST, "pretrain.images=one_view", "pretrain.per_id=2"))
    assert len({default.key, view["pretrain_reid"].key, capped["pretrain_reid"].key}) == 3
    assert view["prepare_auxiliary"].key == build_stages(load_pipeline_config(*FAST))["prepare_auxiliary"].key


def test_the_view_start_trains_on_each_persons_modal_view_only(tmp_path):
    import pandas as pd

    from pipelines.graph import execute

    cfg = load_pipeline_config(*FAST, f"out={tmp_path}", "reid.precision=fp32", "pretrain.images=one_view",
                              "pretrain.batch_size=8")
    stages = build_stages(cfg)
    aux = execute(stages["prepare_auxiliary"], tmp_path / "cache", {})
    done = execute(stages["pretrain_reid"], tmp_path / "cache", {"prepare_auxiliary": aux.result})
    subset = pd.read_csv(done.folder / "subset.csv")
    manifest = pd.read_csv(Path(aux.result.root) / "manifest.csv")
    manifest = manifest[manifest["split"] == "train"]
    views = manifest.set_index("name")["view"]
    assert subset["path"].map(lambda p: views[Path(p).name]).groupby(subset["identity"]).nunique().eq(1).all()
    assert done.result.train_images == len(subset) < len(manifest)
    assert done.result.n_classes == manifest["identity"].nunique() == 6


def test_an_auxiliary_subset_on_real_data_is_refused_before_any_stage(tmp_path):
    from pipelines.stages import pretrain_reid

    cfg = load_pipeline_config(*FAST, "data.dataset=market1501", f"data.root={tmp_path}", "pretrain.images=one_view")
    with pytest.raises(ValueError, match=r"pretrain.images=one_view.*SynthMarket"):
        pretrain_reid.check(cfg)
    pretrain_reid.check(load_pipeline_config(*FAST, "data.dataset=market1501", f"data.root={tmp_path}"))


def test_the_regime_preset_pretrains_the_view_start_and_runs_every_method():
    from pipelines.graph import checks

    cfg = load_pipeline_config("preset=regime")
    checks(cfg)  # cheap: nothing is rendered or trained
    stages = build_stages(cfg)
    assert stages["pretrain_reid"].inputs["subset"] == {"images": "one_view", "per_id": 0}
    assert {f"train_reid[{m}]" for m in ("none", "copy", "oracle", "pona", "full")} <= set(stages)
    s = cfg.data.synthmarket
    assert (s.jacket_prob, s.camera_strength, s.shared_scenes, s.n_train_ids) == (1.0, 0.0, True, 800)
    assert cfg.generator.checkpoint == "released:pona3-synth" and cfg.reid.budget == "epochs"
    assert cfg.reid.optim.step_size >= cfg.reid.optim.epochs  # constant lr, as the curves that chose it
