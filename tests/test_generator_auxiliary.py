"""generator.train_on=auxiliary: the generator learns from people outside the experiment, so it is
leak-free and still has many pairs; the stage graph and the training pairs say so."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.config import load_pipeline_config
from pipelines.graph import build_stages, run_in_order
from poseformats.annotations import read_annotations


def _cfg(out: Path, *extra: str):
    return load_pipeline_config("preset=smoke", f"out={out}", "auxiliary.n_ids=4", *extra)


def test_auxiliary_generator_depends_on_the_auxiliary_stage_not_on_the_kept_list(tmp_path):
    aux = build_stages(_cfg(tmp_path, "generator.train_on=auxiliary"))
    kept = build_stages(_cfg(tmp_path))
    assert aux["train_generator"].deps == ("prepare_data", "prepare_auxiliary")
    assert kept["train_generator"].deps == ("prepare_data", "subsample")
    assert "prepare_auxiliary" not in kept or kept["prepare_auxiliary"].key == aux["prepare_auxiliary"].key
    assert aux["train_generator"].key != kept["train_generator"].key


def test_auxiliary_generator_trains_on_auxiliary_people_only(tmp_path):
    cfg = _cfg(tmp_path, "generator.train_on=auxiliary")
    stages = build_stages(cfg)
    wanted = ("prepare_data", "prepare_auxiliary", "train_generator")
    results = run_in_order({k: stages[k] for k in wanted}, tmp_path / "cache")
    data, aux, gen = (results[k].result for k in wanted)
    assert gen.train_on == "auxiliary" and gen.trained
    pairs = pd.read_csv(Path(results["train_generator"].folder) / "pairs-train.csv")
    aux_names = set(read_annotations(aux.annotations))
    dataset_names = set(read_annotations(data.annotations)) | set(read_annotations(data.test_annotations))
    used = set(pairs["from"]) | set(pairs["to"])
    assert used and used <= aux_names and not used & dataset_names
    aux_ids = {n.split("_")[0] for n in aux_names}
    dataset_ids = {n.split("_")[0] for n in dataset_names}
    assert not aux_ids & dataset_ids  # no identity in common with train or test
