"""Stage 8: score the generator on the dataset's test pairs (SSIM, mask-SSIM, PSNR, L1, PCKh, and
IS / FID / LPIPS where their weights are available), so every run reports generator quality beside
re-ID mAP. The first ``evaluate_pairs`` test pairs are generated and scored, and generated again
with shuffled target poses (``pona_model.metrics.pose_control``): whether the generator follows the
target pose, where PCKh's estimator finds no person in blurry images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines import methods
from pipelines.config import PipelineConfig, effective_precision, generator_seed, generator_view
from pipelines.stages import Instance
from pona_model.evaluation.folder import evaluate_folder
from pona_model.evaluation.settings import RESULT_FORMAT, MetricSettings
from pona_model.generate import generate_pairs
from pona_model.inference import load_generator
from pona_model.metrics.pose_control import pose_control
from pona_model.pair_dataset import PairDataset
from poseformats.annotations import read_annotations, read_pairs, write_pairs
from runtime.atomic import atomic_write_text

IDENTITY_METRICS = ("ssim", "mask_ssim", "psnr", "l1")


def instances(cfg: PipelineConfig) -> list[Instance]:
    if not cfg.evaluate_generator:
        return []
    return [Instance(methods.generator_stage(g, "evaluate_generator"),
                     {"prepare_data": "prepare_data", "train_generator": methods.generator_stage(g)}, generator_view(cfg, g))
            for g in methods.generators(cfg)]


def pose_estimator(cfg: PipelineConfig) -> str:
    """``pose_estimator`` resolved: auto is the synth estimator on SynthMarket (the photo one finds few
    people in its 64 x 32 crops: ceiling 0.570) and the photo one on real data."""
    if cfg.pose_estimator != "auto":
        return cfg.pose_estimator
    return "synth" if cfg.data.dataset == "synthmarket" else "photo"


def check(cfg: PipelineConfig) -> None:
    """The synth estimator's release is verified before any stage runs. Later would be too late: a
    truncated or altered releases/pose-synth made the evaluation skip PCKh and still be recorded, so the
    run exited 0 without it and a rerun with the file restored reused that record."""
    if pose_estimator(cfg) != "synth":
        return
    from pona_model.metrics.synth_pose import RELEASE_NAME  # here: only a run that scores PCKh needs them
    from runtime.releases import ReleaseError, verify_release

    try:
        verify_release(RELEASE_NAME)
    except ReleaseError as exc:
        raise ReleaseError(f"pose_estimator={cfg.pose_estimator} (PCKh's estimator): {exc}; or score PCKh with "
                           "the photo estimator: pose_estimator=photo") from exc


def inputs(cfg: PipelineConfig) -> dict[str, Any]:
    # RESULT_FORMAT: a change in what the scores are (a metric added, another library) reruns the stage.
    return {"pairs": cfg.evaluate_pairs, "pose_control": True, "metrics": RESULT_FORMAT, "baselines": "identity",
            "precision": effective_precision(cfg), "pose_estimator": pose_estimator(cfg)}


def run(folder: Path, cfg: PipelineConfig, deps: dict[str, Any]) -> dict[str, Any]:
    data, gen = deps["prepare_data"], deps["train_generator"]
    if not data.get("test_pairs") or not data.get("test_annotations"):
        return {"skipped": "no test pairs / test annotations configured (data.test_pairs, data.test_annotations)"}
    keypoints = read_annotations(data["test_annotations"])
    pairs = read_pairs(data["test_pairs"], known_names=keypoints).head(cfg.evaluate_pairs)
    write_pairs(folder / "pairs.csv", pairs)
    images = Path(data["root"]) / "bounding_box_test"
    model = load_generator(gen["checkpoint"], cfg.device, precision=cfg.precision)
    dataset = PairDataset(images, keypoints, pairs, image_size=model.image_size)
    generate_pairs(model, dataset, folder / "generated", batch_size=cfg.augment.batch_size)
    control = pose_control(model, dataset, seed=generator_seed(cfg), batch_size=cfg.augment.batch_size)
    atomic_write_text(folder / "pose_control.json", json.dumps(control, indent=2) + "\n")
    result = evaluate_folder(folder / "generated", keypoints, images=images, pairs=folder / "pairs.csv",
                             train_images=Path(data["root"]) / "bounding_box_train", out=folder / "metrics.json",
                             settings=MetricSettings(pose_estimator=pose_estimator(cfg)),
                             provenance={"checkpoint": gen["checkpoint"], "sha256": gen["sha256"]}, progress=True)
    scores = {name: m["value"] if m.get("value") is not None else f"skipped: {m.get('skipped', 'no value')}"
              for name, m in result["metrics"].items()}
    scores.update(pose_gain_l1=control["pose_gain_l1"], pose_sensitivity_l1=control["pose_sensitivity_l1"])
    # What the numbers are read against: the condition image handed back unchanged (identity baseline,
    # same pairs, same size) and the pose estimator's score on the real target images (PCKh's ceiling).
    h, w = model.image_size
    identity = evaluate_folder(None, keypoints, images=images, pairs=folder / "pairs.csv", baseline="identity",
                               settings=MetricSettings(include=list(IDENTITY_METRICS), size=[h, w]),
                               out=folder / "identity_metrics.json", progress=False)
    for name in IDENTITY_METRICS:
        scores[f"{name}_identity"] = identity["metrics"][name].get("value")
    reference = result["metrics"].get("pckh_gt", {}).get("real_target_reference", {})
    scores["pckh_gt_ceiling"] = reference.get("value")
    scores["pckh_estimator"] = pose_estimator(cfg)  # which estimator scored PCKh and its ceiling
    return {"metrics": str(folder / "metrics.json"), "pose_control": str(folder / "pose_control.json"),
            "scores": scores}
