"""Auxiliary SynthMarket identities: nobody of the dataset, the dataset untouched, Market layout for
both the re-ID pretraining and the generator trainer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from poseformats.annotations import read_annotations, read_pairs
from reid.market_index import index_market
from runtime.errors import ConfigError
from synthmarket import SynthMarketConfig, generate_synthmarket
from synthmarket.auxiliary import AUX_BASE, MARKER, generate_auxiliary, main

TINY = dict(n_train_ids=4, n_test_ids=4, max_cameras=3, max_images_per_camera=2, n_distractors=4, n_junk=3,
            test_pairs=40, workers=1, progress=False)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "synthmarket.json":
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path, SynthMarketConfig]:
    base = tmp_path_factory.mktemp("aux")
    cfg = SynthMarketConfig(**TINY)
    generate_synthmarket(base / "market", cfg)
    generate_auxiliary(base / "aux", cfg, n_ids=6)
    return base / "market", base / "aux", cfg


def test_auxiliary_people_are_nobody_of_the_dataset(pair):
    market, aux, _ = pair
    data = pd.read_csv(market / "manifest.csv")
    extra = pd.read_csv(aux / "manifest.csv")
    people = data[data["role"] == "person"]
    assert extra["identity"].nunique() == 6
    assert not set(extra["identity"]) & set(people["identity"])  # no shared Market number
    assert not set(extra["source"]) & set(data["source"])  # no shared appearance / track seed
    assert extra["source"].min() >= AUX_BASE and extra["n_visible"].min() > 0  # people, not background boxes
    images = {p.read_bytes() for p in market.rglob("*.jpg")}
    assert not images & {p.read_bytes() for p in aux.rglob("*.jpg")}


def test_layout_serves_reid_and_generator_training(pair):
    _, aux, _ = pair
    table = index_market(aux, splits=("train",), progress=False)
    assert len(table) == len(pd.read_csv(aux / "manifest.csv")) and (table["identity"] > 0).all()
    keypoints = read_annotations(aux / "market-annotation-train.csv")
    assert set(keypoints) == set(table["name"])
    pairs = read_pairs(aux / "market-pairs-train.csv", known_names=keypoints)
    assert len(pairs) > 0
    ids = lambda col: pairs[col].str[:4]  # noqa: E731
    assert (ids("from") == ids("to")).all()  # pairs of the same person
    assert json.loads((aux / MARKER).read_text())["n_ids"] == 6


def test_dataset_bytes_do_not_depend_on_the_auxiliary_set(pair, tmp_path):
    market, _, cfg = pair
    generate_synthmarket(tmp_path / "again", cfg)
    assert _digest(tmp_path / "again") == _digest(market)


def test_rerun_is_reused_other_settings_refused(pair, tmp_path, capsys):
    _, aux, cfg = pair
    stamp = (aux / MARKER).stat().st_mtime_ns
    assert len(generate_auxiliary(aux, cfg, n_ids=6)) == len(pd.read_csv(aux / "manifest.csv"))
    assert (aux / MARKER).stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="other settings"):
        generate_auxiliary(aux, cfg, n_ids=7)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("user data")
    assert main([f"out={occupied}", "n_ids=2", "synthmarket.n_train_ids=4", "synthmarket.n_test_ids=4"]) == 2
    assert (occupied / "keep.txt").read_text() == "user data" and "not empty" in capsys.readouterr().err


def test_pipeline_stage_is_shared_by_portions_seeds_and_methods(tmp_path):
    from pipelines.config import load_pipeline_config
    from pipelines.stages import prepare_auxiliary

    sizes = ("data.synthmarket.n_train_ids=4", "data.synthmarket.n_test_ids=4", "auxiliary.n_ids=3")
    a = load_pipeline_config("preset=smoke", *sizes)
    b = load_pipeline_config("preset=smoke", *sizes, "portion=0.8", "seed=2", "methods=none,full")
    fingerprint = prepare_auxiliary.settings(a).fingerprint()
    assert fingerprint == prepare_auxiliary.settings(b).fingerprint()
    assert fingerprint != prepare_auxiliary.settings(load_pipeline_config("preset=smoke", *sizes[:2])).fingerprint()
    result = prepare_auxiliary.run(tmp_path, prepare_auxiliary.settings(a), {})
    assert result.n_ids == 3 and Path(result.annotations).is_file() and Path(result.pairs).is_file()
    assert len(index_market(result.root, splits=("train",), progress=False)) == result.n_images
