"""Stage 8: score the generator on the dataset's test pairs (SSIM, mask-SSIM, PSNR, L1, PCKh, and
IS / FID / LPIPS where their weights are available), so every run reports generator quality beside
re-ID mAP. The first ``evaluate_pairs`` test pairs are generated and scored
(``pona_model.evaluation.from_checkpoint.evaluate_generator``), and generated again with shuffled
target poses (``pona_model.metrics.pose_control``, seeded by the generator's seed): whether the
generator follows the target pose, where PCKh's estimator finds no person in blurry images."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import plan
from pipelines.config import PipelineConfig, effective_precision, generator_seed
from pipelines.stage_names import PREPARE_DATA, evaluated_generator, trained_generator
from pipelines.stages import Instance, StageOutput, StageSettings, run_only
from pona_model.evaluation.folder import evaluate_folder
from pona_model.evaluation.from_checkpoint import evaluate_generator
from pona_model.evaluation.settings import RESULT_FORMAT, MetricSettings
from pona_model.inference import load_generator
from pona_model.metrics.pose_control import pose_control
from pona_model.pair_dataset import PairDataset
from poseformats.annotations import read_annotations, read_pairs, write_pairs
from runtime.atomic import atomic_write_text

IDENTITY_METRICS = ("ssim", "mask_ssim", "psnr", "l1")


@dataclass(frozen=True, kw_only=True)
class Settings(StageSettings):
    """``metrics``: the result format (a metric added, another library: the stage reruns); ``precision``
    resolved; ``pose_estimator`` resolved (``pose_estimator``); ``pose_control_seed``: the derangement
    of target poses (the generator's seed)."""

    pairs: int
    pose_control: bool = True
    metrics: str = RESULT_FORMAT
    baselines: str = "identity"
    precision: str
    pose_estimator: str
    pose_control_seed: int
    device: str = run_only()
    batch_size: int = run_only()


@dataclass(frozen=True, kw_only=True)
class Result(StageOutput):
    """``scores``: each metric's value, or 'skipped: <reason>'; ``skipped``: why nothing was scored."""

    metrics: str = ""
    pose_control: str = ""
    scores: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""

    def summary(self) -> dict[str, Any]:
        """What results.json records under the generator's ``metrics``."""
        return {"skipped": self.skipped} if self.skipped else dict(self.scores)


def pose_estimator(cfg: PipelineConfig) -> str:
    """``pose_estimator`` resolved: auto is the synth estimator on SynthMarket (the photo one finds few
    people in its 64 x 32 crops: ceiling 0.570) and the photo one on real data."""
    if cfg.pose_estimator != "auto":
        return cfg.pose_estimator
    return "synth" if cfg.data.dataset == "synthmarket" else "photo"


def settings(cfg: PipelineConfig) -> Settings:
    return Settings(pairs=cfg.evaluate_pairs, precision=effective_precision(cfg), pose_estimator=pose_estimator(cfg),
                    pose_control_seed=generator_seed(cfg), device=cfg.device, batch_size=cfg.augment.batch_size)


def instances(cfg: PipelineConfig) -> list[Instance]:
    if not cfg.evaluate_generator:
        return []
    return [Instance(evaluated_generator(g), settings(cfg), {"prepare_data": PREPARE_DATA,
                                                              "train_generator": trained_generator(g)})
            for g in plan.generators(cfg)]


def check(cfg: PipelineConfig) -> None:
    """The synth estimator's release is verified before any stage runs. Later would be too late: a
    truncated or altered releases/pose-synth made the evaluation skip PCKh and still be recorded, so the
    run exited 0 without it and a rerun with the file restored reused that record."""
    if not (cfg.evaluate_generator and plan.generators(cfg)) or pose_estimator(cfg) != "synth":
        return
    from pona_model.metrics.synth_pose import RELEASE_NAME  # here: only a run that scores PCKh needs them
    from runtime.releases import ReleaseError, verify_release

    try:
        verify_release(RELEASE_NAME)
    except ReleaseError as exc:
        raise ReleaseError(f"pose_estimator={cfg.pose_estimator} (PCKh's estimator): {exc}; or score PCKh with "
                           "the photo estimator: pose_estimator=photo") from exc


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    data, gen = deps["prepare_data"], deps["train_generator"]
    if not data.test_pairs or not data.test_annotations:
        return Result(skipped="no test pairs / test annotations configured (data.test_pairs, data.test_annotations)")
    keypoints = read_annotations(data.test_annotations)
    pairs = read_pairs(data.test_pairs, known_names=keypoints).head(settings.pairs)
    write_pairs(folder / "pairs.csv", pairs)
    images = Path(data.root) / "bounding_box_test"
    result = evaluate_generator(gen.checkpoint, images, data.test_annotations, folder / "pairs.csv",
                                folder / "generated", out=folder / "metrics.json", batch_size=settings.batch_size,
                                device=settings.device, precision=settings.precision,
                                train_images=Path(data.root) / "bounding_box_train",
                                settings=MetricSettings(pose_estimator=settings.pose_estimator),
                                provenance={"checkpoint": gen.checkpoint, "sha256": gen.sha256}, progress=True)
    model = load_generator(gen.checkpoint, settings.device, precision=settings.precision)
    dataset = PairDataset(images, keypoints, pairs, image_size=model.image_size)
    control = pose_control(model, dataset, seed=settings.pose_control_seed, batch_size=settings.batch_size)
    atomic_write_text(folder / "pose_control.json", json.dumps(control, indent=2) + "\n")
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
    scores["pckh_estimator"] = settings.pose_estimator  # which estimator scored PCKh and its ceiling
    return Result(metrics=str(folder / "metrics.json"), pose_control=str(folder / "pose_control.json"), scores=scores)
