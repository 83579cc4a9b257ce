"""The validation people that choose a release's snapshot window (``bench/generator_validation_window.py``):
people the generator never trained on, scored in the same Market layout as the test pairs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from poseformats.annotations import read_pairs
from synthmarket import SynthMarketConfig
from synthmarket.auxiliary import generate_auxiliary
from tests.conftest import load_bench


def test_validation_pairs_hold_only_people_the_training_never_saw(tmp_path: Path) -> None:
    cfg = SynthMarketConfig(out=str(tmp_path / "unused"), n_train_ids=2, n_test_ids=2, max_cameras=3,
                            max_images_per_camera=2, n_distractors=0, n_junk=0, height=64, width=32, supersample=1,
                            workers=1, progress=False)
    train = tmp_path / "aux-train"
    trained_on = set(generate_auxiliary(train, cfg, n_ids=3)["identity"])
    bench = load_bench("generator_validation_window")
    pairs_file = bench.validation_people(train, tmp_path / "cache", train_ids=3, val_ids=2, n_pairs=10_000, seed=0)
    pairs = read_pairs(pairs_file)
    manifest = pd.read_csv(pairs_file.parent / "manifest.csv", dtype={"name": str})
    identity = dict(zip(manifest["name"], manifest["identity"]))
    in_pairs = {identity[n] for n in pd.concat([pairs["from"], pairs["to"]])}
    assert len(in_pairs) == 2 and not in_pairs & trained_on  # both new people, none of the training's
    assert all(identity[a] == identity[b] for a, b in zip(pairs["from"], pairs["to"]))
    fewer = bench.validation_people(train, tmp_path / "cache", train_ids=3, val_ids=2, n_pairs=6, seed=0)
    assert len(read_pairs(fewer)) == 6


def test_a_release_is_scored_with_its_own_iteration_config_and_fp32_weights() -> None:
    """``--release``: the start of a fine-tune has no snapshot; its verified release stands in for one."""
    bench = load_bench("generator_validation_window")
    iterations, states, config, label = bench.release_weights("pona3-synth")
    assert iterations == [20000] and label == "released:pona3-synth" and len(states) == 1
    assert config["generator"]["n_blocks"] == 3 and "seed" in config
    floats = [v for v in states[0].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float32 for v in floats)  # the release's fp16, cast back
    with pytest.raises(SystemExit, match="--release no-such-release: no released weights named"):
        bench.release_weights("no-such-release")
