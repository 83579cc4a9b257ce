"""A method is one row of ``pipelines.methods.TABLE`` plus, if it makes images, one stage module. A toy
method, ``mirror`` (each missing image replaced by its condition image mirrored), is registered in a
copy of the table with its module: the config, the stage names, the graph, the stage cache, the
report and the sweep's tables pick it up with no other edit."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

from augment import copy_control
from pipelines import methods
from pipelines.config import PipelineConfig, load_pipeline_config
from pipelines.graph import build_stages
from pipelines.report import format_run
from pipelines.run import run_pipeline
from pipelines.stage_names import fill, merged
from pipelines.stages import synthesize as synthesis
from pipelines.sweep import markdown_table, paired_gains, results_table, summary_table

FILLER = "mirror_conditions"


def toy_module() -> types.ModuleType:
    """What a new method's author writes as ``pipelines/stages/mirror_conditions.py``."""
    module = types.ModuleType(f"pipelines.stages.{FILLER}")

    @dataclass(frozen=True, kw_only=True)
    class Settings(synthesis.Plan):
        control: str = "mirror"

    def settings(cfg: PipelineConfig) -> Settings:
        return Settings(**synthesis.plan_settings(cfg))

    def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> synthesis.Result:
        plan, _, images = synthesis.synthesis_plan(settings, deps)
        manifest = copy_control(plan, images_dir=images, out_dir=folder / "images", seed=settings.seed)
        for path in manifest.loc[manifest["status"] != "skipped", "path"]:
            with Image.open(path) as image:
                mirrored = ImageOps.mirror(image)
            mirrored.save(path)
        return synthesis.Result(**synthesis.write_manifest(folder, manifest))

    module.__dict__.update(Settings=Settings, Result=synthesis.Result, settings=settings, run=run,
                           verify=synthesis.verify)
    return module


@pytest.fixture
def with_mirror(monkeypatch):
    row = methods.Method("mirror", "kept + the condition images mirrored", "conditions mirrored", filler=FILLER,
                         report_key="mirror_control", compared_with=("none",))
    monkeypatch.setattr(methods, "TABLE", {**methods.TABLE, row.name: row})
    monkeypatch.setitem(sys.modules, f"pipelines.stages.{FILLER}", toy_module())
    return row


def test_without_its_row_the_method_is_refused():
    with pytest.raises(ValueError, match="methods must be a non-empty list of none, patn, pona"):
        load_pipeline_config("preset=smoke", "methods=none,mirror")


def test_a_new_row_and_its_module_reach_the_graph_the_cache_and_the_report(with_mirror, tmp_path):
    cfg = load_pipeline_config("preset=smoke", f"out={tmp_path}", "methods=none,mirror", "evaluate_generator=false")
    assert (fill(with_mirror), merged(with_mirror)) == ("synthesize[mirror]", "merge[mirror]")
    stages = build_stages(cfg)
    assert list(stages) == ["prepare_data", "subsample", "synthesize[mirror]", "merge[mirror]", "merge[reduced]",
                            "train_reid[none]", "train_reid[mirror]", "evaluate_reid[none]", "evaluate_reid[mirror]"]
    assert stages["synthesize[mirror]"].kind == FILLER and stages["synthesize[mirror]"].inputs["control"] == "mirror"
    assert stages["merge[mirror]"].roles["synthesis"] == "synthesize[mirror]"
    assert stages["train_reid[mirror]"].roles["training_set"] == "merge[mirror]"
    # its own fingerprint: another condition policy is another cache folder for it, not for the reduced set
    other = build_stages(dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, condition_policy="same_camera")))
    assert other["synthesize[mirror]"].key != stages["synthesize[mirror]"].key
    assert other["train_reid[none]"].key == stages["train_reid[none]"].key

    report = run_pipeline(cfg)
    folder = Path(report["stages"]["synthesize[mirror]"]["folder"])
    assert folder.parent.name == FILLER and (folder / "done.json").is_file()
    assert set(report["methods"]) == {"none", "mirror"} and 0 <= report["methods"]["mirror"]["mAP"] <= 100
    counts = report["mirror_control"]
    assert counts.get("copied_condition", 0) > 0
    assert counts.get("copied_condition", 0) + counts.get("skipped", 0) == report["subsample"]["n_missing"]
    manifest = json.loads((folder / "done.json").read_text())["result"]
    assert manifest["counts"] == counts
    assert "mirror" in format_run(report) and "synthesize[mirror]" in format_run(report)
    again = run_pipeline(cfg)
    assert all(s["cached"] for s in again["stages"].values()) and again["methods"] == report["methods"]

    results = results_table([report])
    assert "| mirror |" in markdown_table(summary_table(results))
    assert list(paired_gains(results)["gain"]) == ["mirror - none"]
