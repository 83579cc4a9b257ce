"""``evaluate_folder`` and ``python -m pona_model.evaluation`` end to end on tiny generated data.

Inception, LPIPS and the pose estimator are replaced by TEST STAND-INS (tests/metrics_stand_ins.py):
randomly initialised small networks and a lookup-table estimator. Their numbers are meaningless; the
tests check the plumbing, the JSON, the pictures and the skip rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pona_model.comparison import SheetBlock, comparison_grid, pose_sheet
from pona_model.evaluation.__main__ import main
from pona_model.evaluation.folder import evaluate_folder
from pona_model.evaluation.report import format_table
from pona_model.evaluation.settings import ALL_METRICS, EvaluationError, MetricSettings
from pona_model.generate import output_name
from pona_model.metrics.masks import apply_mask, body_mask
from pona_model.metrics.pixel import psnr
from pona_model.metrics.ssim import ssim
from poseformats.annotations import read_annotations, read_pairs, write_pairs
from tests.conftest import make_pair_data
from tests.metrics_stand_ins import STAND_IN, StandInPoseEstimator, stand_in_inception, stand_in_lpips

H, W = 64, 32


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def scored(tmp_path):
    """2 identities x 3 images of 64 x 32 (12 pairs) and a folder of 'generated' images: the targets
    with noise, saved as <from>___<to>.png."""
    root = make_pair_data(tmp_path / "data", n_ids=2, per_id=3, size=(H, W))
    images = root / "bounding_box_train"
    keypoints = read_annotations(root / "market-annotation-train.csv")
    pairs = read_pairs(root / "market-pairs-train.csv")
    generated = tmp_path / "generated"
    generated.mkdir()
    rng = np.random.default_rng(0)
    for a, b in zip(pairs["from"], pairs["to"]):
        target = _rgb(images / b).astype(int)
        noisy = np.clip(target + rng.normal(0, 12, target.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(generated / f"{output_name(a, b)}.png")
    return {"root": root, "images": images, "keypoints": keypoints, "pairs": pairs, "generated": generated,
            "annotations": root / "market-annotation-train.csv", "pairs_csv": root / "market-pairs-train.csv"}


def test_every_metric_end_to_end_with_stand_ins(scored, tmp_path):
    estimator = StandInPoseEstimator()
    pairs = scored["pairs"]
    for a, b in zip(pairs["from"], pairs["to"]):  # the estimator "sees" the target pose on both images
        kp = scored["keypoints"][b]
        estimator.register(_rgb(scored["images"] / b), kp)
        estimator.register(_rgb(scored["generated"] / f"{output_name(a, b)}.png"), kp)
    out = tmp_path / "eval" / "metrics.json"
    settings = MetricSettings(is_splits=2, batch_size=5, fid_stats=str(tmp_path / "fid.npz"))
    result = evaluate_folder(scored["generated"], scored["annotations"], images=scored["images"],
                             pairs=scored["pairs_csv"], train_images=scored["images"], out=out, settings=settings,
                             inception=stand_in_inception(), lpips=stand_in_lpips(), pose_estimator=estimator,
                             grid_pairs=4, sheet_conditions=2, sheet_poses=2, progress=False)
    metrics = result["metrics"]
    assert set(metrics) == set(ALL_METRICS)
    assert all(m["value"] is not None and "skipped" not in m for m in metrics.values()), metrics
    assert result["pairs"] == {"found": 12, "used": 12, "selection": "all"}
    assert result["pinned"]["compared_size"] == [H, W] and "bicubic" in result["pinned"]["resize"]
    # The scores are the per-pair functions averaged over the pairs.
    gens, tgts, masks = [], [], []
    for a, b in zip(pairs["from"], pairs["to"]):
        gens.append(_rgb(scored["generated"] / f"{output_name(a, b)}.png"))
        tgts.append(_rgb(scored["images"] / b))
        masks.append(body_mask(scored["keypoints"][b], H, W))
    gens, tgts, masks = np.stack(gens), np.stack(tgts), np.stack(masks)
    assert metrics["ssim"]["value"] == pytest.approx(ssim(gens, tgts).mean())
    assert metrics["mask_ssim"]["value"] == pytest.approx(ssim(apply_mask(gens, masks), apply_mask(tgts, masks)).mean())
    assert metrics["psnr"]["value"] == pytest.approx(psnr(gens, tgts).mean())
    assert metrics["pckh"]["value"] == 1.0 and metrics["pckh_gt"]["value"] == 1.0
    assert metrics["pckh_gt"]["real_target_reference"]["value"] == 1.0
    assert metrics["pckh"]["generated_without_any_joint"] == 0
    assert metrics["pckh"]["pairs_used"] == 12 and estimator.calls == 12 + 6  # each real target estimated once
    assert STAND_IN in metrics["is"]["network"]["network"] and STAND_IN in metrics["pckh"]["estimator"]["estimator"]
    assert metrics["fid"]["real"]["n_real"] == 6 and not metrics["fid"]["real"]["from_cache"]
    assert metrics["is"]["splits"] == 2 and metrics["lpips"]["value"] > 0
    assert metrics["kid"]["subset_size"] == 6 and metrics["kid"]["subsets"] == 100  # capped by the 6 real images
    assert result["scores"]["ssim"] == metrics["ssim"]["value"] and "is_std" in result["scores"]
    # Files: strict JSON, per-pair CSV, pictures of the documented layout.
    on_disk = json.loads(out.read_text())
    assert on_disk["metrics"]["ssim"]["value"] == metrics["ssim"]["value"]
    assert len((out.parent / "metrics_pairs.csv").read_text().splitlines()) == 13
    assert result["files"]["picture_scale"] == 2  # 64 x 32 cells are shown at 128 x 64
    assert _rgb(out.parent / "metrics_grid.png").shape == (2 * 4 * H, 2 * 4 * W, 3)
    assert _rgb(out.parent / "metrics_sheet.png").shape == (2 * (2 * 3 * H + 4), 2 * 3 * W, 3)
    # A second run takes the real statistics from the cache.
    again = evaluate_folder(scored["generated"], scored["keypoints"], images=scored["images"], pairs=scored["pairs"],
                            train_images=scored["images"], settings=settings, inception=stand_in_inception(),
                            progress=False)
    assert again["metrics"]["fid"]["real"]["from_cache"]
    assert again["metrics"]["fid"]["value"] == pytest.approx(metrics["fid"]["value"])
    kid = evaluate_folder(scored["generated"], scored["keypoints"], images=scored["images"], pairs=scored["pairs"],
                          train_images=scored["images"], inception=stand_in_inception(), progress=False,
                          settings=MetricSettings(include=["kid"], kid_subsets=3, kid_subset_size=4,
                                                  fid_stats=settings.fid_stats))["metrics"]["kid"]
    assert (kid["subsets"], kid["subset_size"]) == (3, 4) and kid["value"] != metrics["kid"]["value"]


def test_absent_weights_and_estimator_are_reported_as_skipped(scored, monkeypatch):
    def no_mediapipe(*args, **kwargs):
        raise ImportError("mediapipe is not installed (test)")

    monkeypatch.setattr("poseformats.estimate.PoseEstimator", no_mediapipe)
    result = evaluate_folder(scored["generated"], scored["annotations"], images=scored["images"],
                             train_images=scored["images"], progress=False)  # TORCH_HOME is empty in tests
    metrics = result["metrics"]
    for name in ("is", "mask_is", "fid", "lpips", "pckh", "pckh_gt"):
        assert metrics[name]["value"] is None and metrics[name]["skipped"], name
    assert "metrics.inception_weights" in metrics["fid"]["skipped"]
    assert "metrics.alexnet_weights" in metrics["lpips"]["skipped"]  # the heads ship in the lpips wheel
    assert "mediapipe" in metrics["pckh"]["skipped"]
    assert metrics["ssim"]["value"] is not None
    assert "fid" not in result["scores"] and "metrics.inception_weights" in result["scores"]["fid_skipped"]
    table = format_table([result])
    assert "skipped" in table and "PoNA, paper" in table and "metrics.inception_weights" in table


def test_vis_strips_are_scored_from_their_panels(scored, tmp_path):
    strips = tmp_path / "strips"
    strips.mkdir()
    black = np.zeros((H, W, 3), np.uint8)
    for png in sorted(scored["generated"].glob("*.png"))[:5]:
        a, b = png.stem.split("___")
        strip = np.concatenate([_rgb(scored["images"] / f"{a}.jpg"), black, _rgb(scored["images"] / f"{b}.jpg"),
                                black, _rgb(png)], axis=1)
        Image.fromarray(strip).save(strips / f"{png.stem}_vis.jpg", quality=90)
    result = evaluate_folder(strips, scored["annotations"], settings=MetricSettings(include=["ssim", "psnr"]),
                             progress=False)
    assert result["inputs"]["format"] == "vis" and result["pairs"]["used"] == 5
    expected = []
    for path in sorted(strips.iterdir()):
        decoded = _rgb(path)
        expected.append(ssim(decoded[:, 4 * W:], decoded[:, 2 * W:3 * W]))
    assert result["metrics"]["ssim"]["value"] == pytest.approx(np.mean(expected))
    assert "strip" in result["pinned"]["target_source"]


def test_identity_baseline_at_a_given_size(scored, tmp_path):
    out = tmp_path / "identity.json"
    settings = MetricSettings(include=["ssim", "l1", "mask_ssim"], size=[32, 16])
    result = evaluate_folder(None, scored["annotations"], images=scored["images"], pairs=scored["pairs_csv"],
                             baseline="identity", out=out, settings=settings, grid_pairs=2, sheet_conditions=0,
                             progress=False)
    assert result["label"] == "identity baseline" and result["pinned"]["compared_size"] == [32, 16]
    assert "condition image unchanged" in result["pinned"]["generated_source"]
    small = {n: np.asarray(Image.open(scored["images"] / n).convert("RGB").resize((16, 32), Image.Resampling.BICUBIC))
             for n in scored["keypoints"]}
    pairs = scored["pairs"]
    expected = np.mean([ssim(small[a], small[b]) for a, b in zip(pairs["from"], pairs["to"])])
    assert result["metrics"]["ssim"]["value"] == pytest.approx(expected)
    assert _rgb(tmp_path / "identity_grid.png").shape == (4 * 2 * 32, 4 * 4 * 16, 3)  # enlarged 4x
    assert "sheet" not in result["files"]


def test_subsets_and_incomplete_generations(scored):
    settings = MetricSettings(include=["l1"], max_pairs=5)
    result = evaluate_folder(scored["generated"], scored["annotations"], images=scored["images"], settings=settings,
                             progress=False)
    assert result["pairs"]["used"] == 5 and "subset" in result["pairs"]["selection"]
    first = sorted(scored["generated"].glob("*.png"))[0]
    first.unlink()
    with pytest.raises(EvaluationError, match="1 of 12 pairs have no generated image"):
        evaluate_folder(scored["generated"], scored["annotations"], images=scored["images"],
                        pairs=scored["pairs_csv"], settings=MetricSettings(include=["l1"]), progress=False)
    three = evaluate_folder(scored["generated"], scored["annotations"], images=scored["images"],
                            pairs=scored["pairs_csv"], settings=MetricSettings(include=["l1"], max_pairs=3),
                            progress=False)  # the removed pair is not among the 3 selected: no error
    assert three["pairs"] == {"found": 12, "used": 3, "selection": "3 of 12, numpy default_rng(0) subset"}
    with pytest.raises(EvaluationError, match="1 target"):
        evaluate_folder(scored["generated"], {k: v for k, v in scored["keypoints"].items()
                                              if k != scored["pairs"]["to"][0]},
                        images=scored["images"], pairs=scored["pairs"], settings=settings, progress=False)
    with pytest.raises(EvaluationError, match="does not exist"):
        evaluate_folder(scored["generated"] / "nope", scored["annotations"], progress=False)


def test_command_line(scored, tmp_path, capsys):
    out = tmp_path / "cli" / "m.json"
    args = [f"generated={scored['generated']}", f"images={scored['images']}", f"annotations={scored['annotations']}",
            "metrics.include=[ssim,mask_ssim,psnr,l1,lpips]", f"out={out}", "progress=false", "label=noisy copies"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "noisy copies" in printed and "SSIM" in printed and "skipped LPIPS" in printed
    result = json.loads(out.read_text())
    assert result["provenance"]["command"]["metrics"]["include"] == ["ssim", "mask_ssim", "psnr", "l1", "lpips"]
    assert main([f"images={scored['images']}"]) == 2
    assert "set annotations=..., generated=..." in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # config errors exit 2 with one line, as every command
        main([*args, "metrics.include=[ssim,bogus]"])
    assert exit_info.value.code == 2 and "unknown metric(s) ['bogus']" in capsys.readouterr().err
    assert main([*args[1:], f"generated={tmp_path / 'missing'}"]) == 1


def test_checkpoint_is_generated_then_scored(trained, pair_data, tmp_path):
    from pona_model.evaluation.from_checkpoint import evaluate_generator

    settings = MetricSettings(include=["ssim", "psnr"], max_pairs=5)
    args = (trained, pair_data / "bounding_box_train", pair_data / "market-annotation-train.csv",
            pair_data / "market-pairs-train.csv", tmp_path / "gen")
    result = evaluate_generator(*args, settings=settings, progress=False, grid_pairs=0, sheet_conditions=0)
    assert result["provenance"]["iteration"] == 2 and len(result["provenance"]["sha256"]) == 64
    assert result["pairs"]["used"] == 5 and result["pairs"]["found"] == len(read_pairs(args[3]))
    assert len(list((tmp_path / "gen").glob("*___*.png"))) == 5  # only the scored pairs are generated
    assert (tmp_path / "gen" / "metrics.json").is_file() and result["metrics"]["ssim"]["value"] is not None
    marker = tmp_path / "gen" / "generator.json"
    marker.write_text(json.dumps({"sha256": "another checkpoint"}))
    with pytest.raises(EvaluationError, match="another checkpoint"):  # never score stale images
        evaluate_generator(*args, settings=settings, progress=False)


def test_comparison_pictures_layout():
    rng = np.random.default_rng(0)
    img = lambda: rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)  # noqa: E731
    kp = np.full((18, 2), -1)
    kp[1] = (3, 2)
    conds, gens, tgts = [img(), img()], [img(), img()], [img(), img()]
    grid = comparison_grid(conds, [kp, kp], gens, tgts)
    assert grid.shape == (16, 16, 3)
    np.testing.assert_array_equal(grid[8:, :4], conds[1])  # uint8 -> [-1, 1] -> uint8 is exact
    np.testing.assert_array_equal(grid[:8, 8:12], gens[0])
    np.testing.assert_array_equal(grid[:8, 12:], tgts[0])
    blocks = [SheetBlock(conds[0], [kp, kp, kp], {"PATN": [img()] * 3, "PoNA": [img()] * 3}, [img()] * 3),
              SheetBlock(conds[1], [kp], {"PATN": [gens[0]], "PoNA": [gens[1]]})]
    sheet = pose_sheet(blocks)
    assert sheet.shape == (4 * 8 + 4 + 3 * 8, 4 * 4, 3)
    np.testing.assert_array_equal(sheet[4 * 8 + 4 + 16:, 4:8], gens[1])  # block 2, row 3 (PoNA), pose 1
    assert (sheet[32:36] == 255).all()  # the white band between blocks
    with pytest.raises(ValueError, match="2 'PoNA' images for 3 poses"):
        pose_sheet([SheetBlock(conds[0], [kp] * 3, {"PoNA": [img()] * 2})])


def test_pairs_file_selects_and_orders(scored, tmp_path):
    subset = scored["pairs"].iloc[[3, 0]]
    write_pairs(tmp_path / "two.csv", subset)
    result = evaluate_folder(scored["generated"], scored["annotations"], images=scored["images"],
                             pairs=tmp_path / "two.csv", settings=MetricSettings(include=["psnr"]), progress=False)
    assert result["pairs"] == {"found": 2, "used": 2, "selection": "all"}


def test_table_prints_the_paper_row_of_the_dataset_and_its_psnr_as_the_legacy_figure(scored, tmp_path, capsys):
    settings = MetricSettings(include=["ssim", "psnr", "psnr_legacy_wrap"])
    result = evaluate_folder(scored["generated"], scored["annotations"], images=scored["images"], settings=settings,
                             progress=False)
    assert result["metrics"]["psnr_legacy_wrap"]["value"] > result["metrics"]["psnr"]["value"]  # noise of sd 12
    lines = format_table([result]).splitlines()
    header, paper = lines[0].split(), lines[2]
    assert header[5:7] == ["PSNR", "PSNR-wrap"] and paper.startswith("PoNA, paper (Market-1501)")
    # the paper's 28.257 stands in the PSNR-wrap column, not beside the correct PSNR
    assert lines[0].index("PSNR-wrap") == paper.index("28.257") and "wrap around" in lines[-1]
    assert "PoNA, paper" not in format_table([result], paper="none")
    fashion = {**result, "inputs": {**result["inputs"], "annotations": "/data/fasion-resize-annotation-test.csv"}}
    table = format_table([fashion])
    assert "PoNA, paper (DeepFashion)" in table and "Market-1501" not in table and "31.382" in table
    unknown = {**result, "inputs": {**result["inputs"], "annotations": "/data/poses.csv"}}
    assert "PoNA, paper" not in format_table([unknown]) and "Market-1501" in format_table([unknown], "market1501")
    out = tmp_path / "m.json"
    base = [f"generated={scored['generated']}", f"images={scored['images']}", f"annotations={scored['annotations']}",
            "metrics.include=[psnr,psnr_legacy_wrap]", f"out={out}", "progress=false"]
    assert main([*base, "paper_row=none"]) == 0 and "PoNA, paper" not in capsys.readouterr().out
    assert main([*base, "paper_row=deepfashion"]) == 0 and "PoNA, paper (DeepFashion)" in capsys.readouterr().out


def test_generated_images_never_land_beside_the_checkpoint(trained, pair_data, tmp_path, monkeypatch):
    """Without generated=, images go under the working folder's runs/test-generated/<sha>: the checkpoint's
    folder may be a committed release or a user's, and nothing is written there."""
    import shutil

    from pona_model.evaluation.from_checkpoint import evaluate_generator

    release = tmp_path / "release"
    release.mkdir()
    checkpoint = release / "checkpoint.pt"
    shutil.copy(trained, checkpoint)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    settings = MetricSettings(include=["ssim"], max_pairs=3)
    result = evaluate_generator(checkpoint, pair_data / "bounding_box_train", pair_data / "market-annotation-train.csv",
                                pair_data / "market-pairs-train.csv", settings=settings, progress=False, grid_pairs=0,
                                sheet_conditions=0)
    assert sorted(p.name for p in release.iterdir()) == ["checkpoint.pt"]
    folder = work / "runs" / "test-generated" / result["provenance"]["sha256"][:12]
    assert len(list(folder.glob("*___*.png"))) == 3
