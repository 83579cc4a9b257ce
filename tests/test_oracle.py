"""The oracle method: missing SynthMarket images re-rendered by the dataset's renderer with the condition's
person and camera and the missing image's shot; same names, identities and counts as copy; refused
on Market-1501 before any stage; a cache entry of its own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import load_pipeline_config
from pipelines.graph import build_stages, run_in_order
from pipelines.run import main as run_main
from pipelines.stage_tables import read_table
from pipelines.sweep import markdown_table, paired_gains, summary_table
from poseformats.annotations import read_annotations
from synthmarket import SynthMarketConfig, generate_synthmarket
from synthmarket.camera import jpeg_bytes
from synthmarket.dataset import dataset_cameras, job_shot
from synthmarket.oracle import RENDERER, NoRendererError, Oracle
from synthmarket.render import render

# Occluders and bad boxes made common, so the eight training images have both (the shot carries them).
TINY = SynthMarketConfig(n_train_ids=3, n_test_ids=2, max_cameras=3, max_images_per_camera=2, n_distractors=1,
                         n_junk=1, test_pairs=4, occlusion_prob=0.5, misalign_prob=0.3, workers=1, progress=False)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("oracle") / "synthmarket"
    generate_synthmarket(out, TINY)
    return out


@pytest.fixture(scope="module")
def oracle(root: Path) -> Oracle:
    return Oracle(root)


def _cross_camera_pair(oracle: Oracle) -> tuple[str, str]:
    """The first training image and an image of the same person in another camera."""
    target = next(iter(oracle.jobs.values()))
    condition = next(j for j in oracle.jobs.values() if j.source == target.source and j.camera != target.camera)
    return target.name, condition.name


def test_oracle_image_is_the_renderers_output_for_that_shot_and_camera(root: Path, oracle: Oracle) -> None:
    target, condition = _cross_camera_pair(oracle)
    t, c = oracle.job(target), oracle.job(condition)
    cameras, content = dataset_cameras(TINY), TINY.content()
    shot, rng = job_shot(t, content)  # the target's shot, and its stream after the shot's draws
    camera = dataclasses.replace(cameras[c.camera - 1], pitch=cameras[t.camera - 1].pitch)
    expected = render(oracle.appearances[c.source], camera, shot, rng, height=TINY.height, width=TINY.width,
                      supersample=TINY.supersample)
    got = oracle.render(target, condition)
    assert (got.image == expected.image).all()  # before JPEG: exactly the renderer's array
    # the file: the condition camera's JPEG quality, the dataset's encoder, so the same bytes
    assert oracle.jpeg(target, condition) == jpeg_bytes(expected.image, cameras[c.camera - 1].jpeg_quality)
    # the target's exact shot: its annotated keypoints and person mask; but the condition's camera
    assert (got.keypoints == read_annotations(root / "market-annotation-train.csv")[target]).all()
    assert (got.person_mask == oracle.render(target, target).person_mask).all()
    assert (got.image != oracle.render(target, target).image).any()


def test_own_camera_gives_the_real_image_back(root: Path, oracle: Oracle) -> None:
    annotations = read_annotations(root / "market-annotation-train.csv")
    shots = pd.read_csv(root / "manifest.csv").query("split == 'train'")
    assert {"low", "pole"} <= set(shots["occluder"]) and {"shift", "small"} <= set(shots["misaligned"])
    for name in oracle.jobs:  # every training image, with itself as condition
        assert oracle.jpeg(name, name) == (root / "bounding_box_train" / name).read_bytes(), name
        assert (oracle.render(name, name).keypoints == annotations[name]).all(), name
    target, condition = _cross_camera_pair(oracle)  # the same person in another camera, under the target's camera
    real = oracle.render(target, target).image
    assert (oracle.render(target, condition, camera=oracle.job(target).camera).image == real).all()


def test_test_gallery_images_are_addressed_when_asked(root: Path, oracle: Oracle) -> None:
    gallery = Oracle(root, splits=("train", "gallery"))
    annotations = read_annotations(root / "market-annotation-test.csv")
    people = [j for j in gallery.jobs.values() if j.split == "gallery" and j.role == "person"]
    assert people and set(oracle.jobs) < set(gallery.jobs)
    for job in people:  # every test person's gallery image, with itself as condition
        assert gallery.jpeg(job.name, job.name) == (root / "bounding_box_test" / job.name).read_bytes(), job.name
        assert (gallery.render(job.name, job.name).keypoints == annotations[job.name]).all(), job.name
    with pytest.raises(KeyError, match="bounding_box_train"):
        oracle.job(people[0].name)  # the filler's oracle addresses training images only
    with pytest.raises(ValueError, match="query"):
        Oracle(root, splits=("query",))


def test_same_names_identities_and_counts_as_copy(tmp_path: Path) -> None:
    cfg = load_pipeline_config("preset=smoke", f"out={tmp_path}", "methods=none,copy,oracle", "portion=0.5",
                               *(f"data.synthmarket.{k}={v}" for k, v in (("n_train_ids", 3), ("n_test_ids", 2),
                                                                           ("n_distractors", 1), ("n_junk", 1))))
    stages = build_stages(cfg)
    wanted = ("prepare_data", "subsample", "synthesize[copy]", "synthesize[oracle]", "merge[copy]", "merge[oracle]")
    results = run_in_order({n: stages[n] for n in wanted}, tmp_path / "cache")
    copy = read_table(results["synthesize[copy]"].result.manifest, keep_default_na=False)
    oracle_rows = read_table(results["synthesize[oracle]"].result.manifest, keep_default_na=False)
    columns = ["name", "identity", "camera", "condition", "target", "status"]
    assert (copy["status"] == "copied_condition").sum() > 0
    assert oracle_rows[columns].assign(status=oracle_rows["status"].replace({"generated": "copied_condition"})).equals(
        copy[columns])  # rendered where copy copies, the rest alike
    assert set(oracle_rows.loc[oracle_rows["status"] == "generated", "renderer"]) == {RENDERER}
    assert results["synthesize[oracle]"].result.renderer == RENDERER
    merged = {m: pd.read_csv(Path(results[f"merge[{m}]"].result.root) / "manifest.csv") for m in ("copy", "oracle")}
    assert merged["copy"][["name", "identity", "camera"]].equals(merged["oracle"][["name", "identity", "camera"]])
    assert set(merged["oracle"]["source"]) == {"real", "generated"}
    # each oracle file is the renderer's image of that (target, condition)
    renderer = Oracle(results["prepare_data"].result.root)
    for row in oracle_rows[oracle_rows["status"] == "generated"].itertuples():
        assert Path(row.path).read_bytes() == renderer.jpeg(row.name, row.condition)


@pytest.mark.parametrize("portion", ["0.5", "1"])
def test_oracle_on_market1501_is_refused_before_any_stage(portion: str, tmp_path: Path, capsys) -> None:
    assert run_main(["preset=smoke", f"out={tmp_path}", "dataset=market1501", f"data.root={tmp_path / 'market'}",
                     f"portion={portion}", "methods=none,oracle"]) == 2
    err = capsys.readouterr().err
    assert "methods=none,oracle: oracle works only with dataset=synthmarket, not dataset=market1501" in err
    assert "drop oracle from methods" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
    with pytest.raises(NoRendererError, match=r"synthmarket\.json does not exist"):
        Oracle(tmp_path)


def test_the_oracle_stage_is_its_own_cache_entry() -> None:
    def stages(*args: str) -> dict:
        return build_stages(load_pipeline_config("preset=smoke", "methods=none,pona,copy,oracle", *args))

    base = stages()
    oracle = base["synthesize[oracle]"]
    assert oracle.kind == "render_oracle" and oracle.roles == {"prepare_data": "prepare_data", "subsample": "subsample"}
    keys = [base[n].key for n in ("synthesize", "synthesize[copy]", "synthesize[oracle]")]
    assert len(set(keys)) == 3
    assert base["merge[oracle]"].key not in {base["merge[copy]"].key, base["merge[augmented]"].key}
    without = build_stages(load_pipeline_config("preset=smoke", "methods=none,pona,copy"))
    assert all(without[n].key == base[n].key for n in without)  # adding the oracle changes no other stage
    assert stages("generator.train.schedule.lr=0.001")["synthesize[oracle]"].key == oracle.key  # no generator
    assert stages("augment.condition_policy=same_camera")["synthesize[oracle]"].key != oracle.key
    assert stages("data.synthmarket.camera_strength=0.5")["synthesize[oracle]"].key != oracle.key
    assert "synthesize[oracle]" not in stages("portion=1")  # nothing is missing


def test_sweep_tables_have_an_oracle_row() -> None:
    rows = [(0.2, s, m, v + s) for s in (0, 1)
            for m, v in (("none", 2.0), ("pona", 3.0), ("copy", 2.5), ("oracle", 6.0), ("full", 9.0))]
    results = pd.DataFrame(rows, columns=["portion", "seed", "method", "mAP"]).assign(rank1=0.0)
    table = markdown_table(summary_table(results))
    assert table.index("| pona |") < table.index("| oracle |") < table.index("| full |")
    gains = paired_gains(results).set_index("gain")["mAP_mean"]
    assert (gains["oracle - pona"], gains["full - oracle"]) == (pytest.approx(3.0), pytest.approx(3.0))
    # the regime's own conditions: what missing data costs, and what the oracle adds over copying
    assert (gains["full - none"], gains["oracle - copy"]) == (pytest.approx(7.0), pytest.approx(3.5))


def test_shared_scenes_keep_the_oracle_exact(tmp_path: Path) -> None:
    """With ``shared_scenes`` a walk's background comes from any camera's scene; the oracle still gives
    each real image back with its own camera, and otherwise shows the condition's walk's background."""
    from synthmarket.dataset import scene_of

    config = dataclasses.replace(TINY, shared_scenes=True, n_train_ids=6)
    root = tmp_path / "shared"
    generate_synthmarket(root, config)
    oracle = Oracle(root)
    content = config.content()
    scenes = {(j.source, j.camera): scene_of(content, j.source, j.camera) for j in oracle.jobs.values()}
    assert any(scene != camera for (_, camera), scene in scenes.items())  # backgrounds left their cameras
    assert scene_of(TINY.content(), 5, 3) == 3  # off: a camera's own scene
    for name in oracle.jobs:
        assert oracle.jpeg(name, name) == (root / "bounding_box_train" / name).read_bytes(), name
    target, condition = _cross_camera_pair(oracle)
    real = oracle.render(target, target).image
    assert (oracle.render(target, condition, camera=oracle.job(target).camera).image == real).all()
    # the same walks without shared scenes differ in their backgrounds only where the scene moved
    plain = tmp_path / "plain"
    generate_synthmarket(plain, dataclasses.replace(TINY, n_train_ids=6))
    moved = [n for n, j in oracle.jobs.items() if scenes[(j.source, j.camera)] != j.camera]
    assert any((root / "bounding_box_train" / n).read_bytes() != (plain / "bounding_box_train" / n).read_bytes()
               for n in moved)
