"""The staged pipeline: the smoke run end to end, the stage cache (skip, invalidate, resume), input
checks before expensive work, and a two-portion sweep on a local dask cluster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from pipelines import plan
from pipelines.cli import shorthand
from pipelines.config import load_pipeline_config
from pipelines.graph import build_stages
from pipelines.report import caveats, format_run
from pipelines.run import main as run_main
from pipelines.run import run_pipeline
from pipelines.stage_cache import DONE
from pipelines.stages import train_reid
from pipelines.sweep import gains_markdown, paired_gains
from pipelines.sweep import main as sweep_main
from pona_model.train_config import load_train_config
from reid.train_config import load_reid_config
from runtime.config import to_dict


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run, shared by the tests of this module (they only read it or add to its cache)."""
    out = tmp_path_factory.mktemp("smoke")
    cfg = load_pipeline_config("preset=smoke", f"out={out}")
    return cfg, run_pipeline(cfg)


def test_smoke_run_reports_every_method_and_stage(smoke):
    cfg, report = smoke
    results = json.loads(Path(report["results_path"]).read_text())
    assert set(results["methods"]) == {"none", "pona"}
    for m in results["methods"].values():
        assert 0 <= m["mAP"] <= 100 and 0 <= m["rank1"] <= 100
    assert (results["portion"], results["seed"]) == (0.5, 0)
    n = results["subsample"]
    assert results["synthesis"].get("generated", 0) + results["synthesis"].get("skipped", 0) == n["n_missing"]
    assert results["generator"]["trained"] and results["generator"]["train_on"] == "kept"
    metrics = results["generator"]["metrics"]
    assert -1 <= metrics["ssim"] <= 1 and 0 <= metrics["mask_ssim"] <= 1
    assert metrics["psnr"] > 0 and 0 <= metrics["l1"] <= 2
    assert metrics["fid"].startswith("skipped: Inception-v3 weights are not available")  # never a number
    assert abs(metrics["pose_gain_l1"]) <= 1 and 0 <= metrics["pose_sensitivity_l1"] <= 1
    # the references each score is read against: the condition image handed back, the estimator's ceiling
    for key in ("ssim", "mask_ssim", "psnr", "l1"):
        assert isinstance(metrics[f"{key}_identity"], float) and metrics[f"{key}_identity"] != metrics[key]
    assert "pckh_gt_ceiling" in metrics
    assert results["caveats"] == caveats(results["methods"], keeps_everything=plan.keeps_everything(cfg))
    printed = format_run(results)
    assert f"ssim {metrics['ssim']:.3f} (identity baseline {metrics['ssim_identity']:.3f})" in printed
    assert set(results["stages"]) == set(build_stages(cfg))
    assert not any(s["cached"] for s in results["stages"].values())
    assert {s["made_on"]["torch_threads"] for s in results["stages"].values()} == {torch.get_num_threads()}


def test_rerun_is_served_from_the_cache(smoke, monkeypatch):
    cfg, first = smoke
    from pipelines import provenance, run

    monkeypatch.setattr(run, "commit", lambda: "b" * 40)  # the checkout when the run starts
    again = run_pipeline(cfg)
    assert all(s["cached"] for s in again["stages"].values())
    assert again["methods"] == first["methods"]
    prov = json.loads(Path(again["results_path"]).read_text())["provenance"]
    assert prov["commit"] == "b" * 40 and prov["commit_at_report"] == provenance.commit()  # names what started


def test_copy_control_adds_only_its_own_stages_and_mirrors_the_synthesis(smoke):
    cfg, first = smoke
    with_copy = load_pipeline_config("preset=smoke", f"out={cfg.out}", "methods=none,pona,copy")
    report = run_pipeline(with_copy)
    ran = {n for n, s in report["stages"].items() if not s["cached"]}
    assert ran == {"synthesize[copy]", "merge[copy]", "train_reid[copy]", "evaluate_reid[copy]"}
    assert report["methods"]["pona"] == first["methods"]["pona"]
    counts = report["copy_control"]
    assert counts.get("copied_condition", 0) == report["synthesis"].get("generated", 0)
    assert counts.get("skipped", 0) == report["synthesis"].get("skipped", 0)
    copy_root = Path(report["stages"]["merge[copy]"]["folder"]) / "dataset" / "bounding_box_train"
    pona_root = Path(report["stages"]["merge[augmented]"]["folder"]) / "dataset" / "bounding_box_train"
    assert sorted(p.name for p in copy_root.iterdir()) == sorted(p.name for p in pona_root.iterdir())
    at_one = build_stages(load_pipeline_config("preset=smoke", "portion=1", "methods=none,pona,copy"))
    assert not any(n.startswith(("synthesize", "merge[copy]", "train_reid[copy]")) for n in at_one)


def test_at_portion_one_every_method_trains_on_the_full_sets_stage():
    # At p = 1 nothing is missing: none, copy, oracle and pona all train on every image, so they must
    # share the full set's training (one cache entry), not retrain the same set once per method.
    methods = "methods=none,copy,oracle,pona,full"
    at_one = build_stages(load_pipeline_config("preset=smoke", "portion=1", methods))
    elsewhere = build_stages(load_pipeline_config("preset=smoke", "portion=0.2", methods))
    trainings = {n for n in at_one if n.startswith("train_reid[")}
    assert trainings == {"train_reid[none]"}
    assert at_one["train_reid[none]"].key == elsewhere["train_reid[full]"].key
    assert not any(n.startswith(("synthesize", "merge", "oracle")) for n in at_one)


def test_a_relative_out_folder_works_from_its_own_directory(smoke, tmp_path, monkeypatch):
    # `make run` uses out=runs: every path a stage hands on must still resolve (a relative data.root
    # once had the relative annotation path joined to it twice).
    cfg, _ = smoke
    shutil.copytree(Path(cfg.out) / "cache" / "prepare_data", tmp_path / "runs" / "cache" / "prepare_data")
    monkeypatch.chdir(tmp_path)
    report = run_pipeline(load_pipeline_config("preset=smoke", "out=runs", "evaluate_generator=false",
                                               "reid.optim.epochs=1"))
    assert set(report["methods"]) == {"none", "pona"}
    done = json.loads((tmp_path / report["stages"]["train_generator"]["folder"] / DONE).read_text())
    assert done["result"]["checkpoint"].startswith("@cache/")  # relative to the cache root: it can move
    assert (tmp_path / "runs" / "p0.5-seed0" / "results.json").exists()


def test_config_change_redoes_only_what_depends_on_it(smoke):
    cfg, _ = smoke
    changed = load_pipeline_config("preset=smoke", f"out={cfg.out}", "augment.condition_policy=same_camera")
    before, after = build_stages(cfg), build_stages(changed)
    same = {n for n in before if before[n].key == after[n].key}
    assert same == {"prepare_data", "subsample", "train_generator", "merge[reduced]", "train_reid[none]",
                    "evaluate_reid[none]", "evaluate_generator"}
    portion = load_pipeline_config("preset=smoke", f"out={cfg.out}", "portion=0.4")
    assert build_stages(portion)["prepare_data"].key == before["prepare_data"].key
    assert build_stages(portion)["subsample"].key != before["subsample"].key


def test_an_interrupted_stage_resumes_without_redoing_finished_work(smoke, monkeypatch):
    cfg, _ = smoke
    cfg2 = load_pipeline_config("preset=smoke", f"out={cfg.out}", "reid.optim.epochs=3")
    real = train_reid.run

    def dies_after_first_epoch(folder, settings, deps):
        import dataclasses

        root = deps["training_set"].root
        from reid.trainer import ReidTrainer
        train = dataclasses.replace(settings.reid, out=str(folder / "train"),
                                    data=dataclasses.replace(settings.reid.data, root=root, manifest=""))
        ReidTrainer(train).fit(max_epochs=1)
        raise KeyboardInterrupt("killed during training")

    monkeypatch.setattr(train_reid, "run", dies_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg2)
    stage = build_stages(cfg2)["train_reid[none]"]
    folder = Path(cfg.out) / "cache" / "train_reid" / stage.key
    assert not (folder / DONE).exists()  # the interrupted stage is not recorded as done
    log = (folder / "train" / "train_log.jsonl").read_text().splitlines()
    assert any(json.loads(line).get("epoch") == 1 for line in log)
    monkeypatch.setattr(train_reid, "run", real)
    report = run_pipeline(cfg2)
    assert report["stages"]["train_reid[none]"]["cached"] is False
    records = [json.loads(line) for line in (folder / "train" / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r.get("event") == "start"] == [0, 1]  # resumed after epoch 1
    assert [r["epoch"] for r in records if r.get("event") == "epoch"] == [1, 2, 3]  # no epoch trained twice
    assert report["stages"]["prepare_data"]["cached"] and report["stages"]["train_generator"]["cached"]


def test_missing_market_root_fails_before_any_stage(tmp_path, capsys):
    assert run_main(["preset=smoke", f"out={tmp_path}", "dataset=market1501",
                     f"data.root={tmp_path / 'nope'}"]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_generator_checkpoint_of_another_size_fails_before_any_stage(smoke, tmp_path, capsys):
    _, report = smoke
    checkpoint = report["generator"]["checkpoint"]
    assert run_main(["preset=smoke", f"out={tmp_path}", f"generator.checkpoint={checkpoint}",
                     "generator.train.generator.image_size=[64,32]"]) == 2
    assert "was trained at 32 x 16, the config says 64 x 32" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_default_preset_names_the_component_presets():
    """default.yaml names the trainers' presets instead of repeating them: the generator's and re-ID
    groups are those presets, but for the paths the pipeline sets and the re-ID start."""
    cfg = load_pipeline_config()
    assert cfg.methods == ["none", "pona", "copy", "oracle"]  # the control and the ceiling beside pona
    mine, theirs = to_dict(cfg.generator.train), to_dict(load_train_config("preset=synth"))
    assert {k: v for k, v in mine.items() if k not in ("out", "data")} == {
        k: v for k, v in theirs.items() if k not in ("out", "data")}
    mine, theirs = to_dict(cfg.reid), to_dict(load_reid_config("preset=synth"))
    # the start: the pipeline's pretrain_reid stage; standalone, its checkpoint is passed as a path
    assert (mine["model"].pop("weights"), theirs["model"].pop("weights")) == ("auxiliary", "random")
    assert mine["data"].pop("root") != theirs["data"].pop("root")  # the pipeline's own, set by its stages
    assert {k: v for k, v in mine.items() if k != "out"} == {k: v for k, v in theirs.items() if k != "out"}


def test_two_portion_sweep_on_a_local_cluster_of_two_processes(smoke, tmp_path, capsys, monkeypatch):
    cfg, report = smoke
    shutil.copytree(Path(cfg.out) / "cache" / "prepare_data", tmp_path / "cache" / "prepare_data")
    from pipelines import sweep

    monkeypatch.setattr(sweep, "commit", lambda: "c" * 40)  # the checkout when the sweep starts
    code = sweep_main(["preset=smoke", f"out={tmp_path}", "portions=0.5,1.0", "seeds=0",
                       f"generator.checkpoint={report['generator']['checkpoint']}", "methods=none,pona",
                       "evaluate_generator=false", "reid.optim.epochs=1", "dask.scheduler=local", "dask.workers=2"])
    assert code == 0
    folder = next(tmp_path.glob("sweep-*"))
    table = (folder / "table.md").read_text()
    assert "| none |" in table and "| pona |" in table and "p = 0.5" in table and "p = 1" in table
    assert (folder / "map_vs_portion.png").stat().st_size > 1000
    results = json.loads((tmp_path / "p1-seed0" / "results.json").read_text())
    assert results["methods"]["pona"] == results["methods"]["none"]  # nothing is missing at p = 1
    assert results["provenance"]["commit"] == "c" * 40  # each run names the commit its sweep started with
    assert "2 runs" in capsys.readouterr().out


def test_paired_gains_are_taken_within_each_seed():
    rows = [(0.2, 0, "none", 2.0), (0.2, 0, "pona", 7.0), (0.2, 0, "copy", 4.0),
            (0.2, 1, "none", 10.0), (0.2, 1, "pona", 13.0), (0.2, 1, "copy", 12.0),
            (0.5, 0, "none", 8.0), (0.5, 0, "pona", 8.5), (0.5, 0, "full", 20.0)]
    results = pd.DataFrame(rows, columns=["portion", "seed", "method", "mAP"])
    gains = paired_gains(results).set_index(["gain", "portion"])
    # p = 0.2: pona - none = 5 and 3 -> mean 4, sample std sqrt(2); unpaired stds would be ~5.7 and ~4.2
    assert gains.loc[("pona - none", 0.2), "mAP_mean"] == pytest.approx(4.0)
    assert gains.loc[("pona - none", 0.2), "mAP_std"] == pytest.approx(2 ** 0.5)
    assert bool(gains.loc[("pona - none", 0.2), "beats_spread"])
    assert gains.loc[("copy - none", 0.2), "mAP_mean"] == pytest.approx(2.0)
    assert gains.loc[("pona - copy", 0.2), "mAP_std"] == pytest.approx(2 ** 0.5)  # 3 and 1
    assert bool(gains.loc[("pona - copy", 0.2), "beats_spread"])  # mean 2 > std 1.41
    one = gains.loc[("pona - none", 0.5)]
    assert (one["mAP_mean"], one["mAP_std"], one["n_seeds"]) == (pytest.approx(0.5), 0.0, 1)
    assert ("copy - none", 0.5) not in gains.index
    table = gains_markdown(paired_gains(results))
    assert "| pona - none | +4.0 ± 1.4 | +0.5 |" in table  # one seed: no spread shown


def test_shorthand_dataset_key():
    assert shorthand(["dataset=market1501", "portion=0.2"]) == ["data.dataset=market1501", "portion=0.2"]
