"""One pass over the pairs (every per-pair metric, the Inception outputs, the poses), and the metric
entries built from it: each with its value and the settings that move it, or its skip reason."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pona_model.evaluation.loading import PairImages
from pona_model.evaluation.networks import real_features
from pona_model.evaluation.pairs import ScoredPair
from pona_model.evaluation.selection import subset
from pona_model.evaluation.settings import PER_PAIR, EvaluationError, MetricSettings
from pona_model.metrics.inception import (
    FID_SETTINGS,
    IS_SETTINGS,
    KID_SETTINGS,
    FeatureExtractor,
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
)
from pona_model.metrics.limbs import limb_margins, limb_region_score
from pona_model.metrics.lpips import LPIPS
from pona_model.metrics.masks import MASK_SETTINGS, apply_mask, body_mask
from pona_model.metrics.pckh import PCKH_SETTINGS, PCKhAccumulator
from pona_model.metrics.pixel import (
    L1_SETTINGS,
    PSNR_LEGACY_WRAP_SETTINGS,
    PSNR_SETTINGS,
    l1,
    psnr,
    psnr_legacy_wrap,
)
from pona_model.metrics.ssim import SSIM_SETTINGS, ssim


def skipped(reason: str, **details: Any) -> dict[str, Any]:
    """A metric entry without a value: the reason, and any details worth keeping."""
    return {"value": None, "skipped": reason, **details}


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


@dataclass
class Tallies:
    """What the pass over the pairs collects: per-pair scores, network outputs, PCKh counts."""

    n: int
    per_pair: dict[str, np.ndarray] = field(default_factory=dict)
    features: list[np.ndarray] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)
    mask_logits: list[np.ndarray] = field(default_factory=list)
    pck_est: PCKhAccumulator = field(default_factory=PCKhAccumulator)
    pck_gt: PCKhAccumulator = field(default_factory=PCKhAccumulator)
    pck_real: PCKhAccumulator = field(default_factory=PCKhAccumulator)
    pose_pairs: int = 0
    no_person_generated: int = 0  # generated images on which the estimator found no joint at all
    no_condition: int = 0  # pairs whose condition image or pose is unknown (limb_region)

    def __post_init__(self) -> None:
        self.per_pair = {k: np.full(self.n, np.nan) for k in PER_PAIR}


def score_pairs(selected: list[ScoredPair], loader: PairImages, settings: MetricSettings,
                 inception: FeatureExtractor | None, lpips: LPIPS | None, estimator: Any,
                 progress: bool) -> Tallies:
    """One pass over the pairs in batches: every per-pair metric, the Inception outputs, the poses."""
    wanted, size = set(settings.include), loader.size
    tallies = Tallies(len(selected))
    pose_rows = set(subset(len(selected), settings.pose_max_pairs).tolist()) if estimator is not None else set()
    tallies.pose_pairs = len(pose_rows)
    target_poses: dict[str, np.ndarray] = {}  # a target image is estimated once, however many pairs share it
    use_inception = inception is not None and bool(wanted & {"is", "mask_is", "fid", "kid"})
    for rows in tqdm(list(_chunks(len(selected), settings.batch_size)), desc="scoring", unit="batch",
                     disable=not progress):
        batch = [selected[i] for i in rows]
        gen_list = [loader.generated(p) for p in batch]
        if any(g.shape[:2] != size for g in gen_list):
            raise EvaluationError(f"generated images of sizes {sorted({g.shape[:2] for g in gen_list})} differ from "
                                  f"the compared size {size}; set metrics.size=[H,W]")
        gen = np.stack(gen_list)
        tgt = np.stack([loader.target(p) for p in batch])
        kps = [loader.target_keypoints(p) for p in batch]
        masks = np.stack([body_mask(k, *size) for k in kps])
        gen_masked, tgt_masked = apply_mask(gen, masks), apply_mask(tgt, masks)
        idx = np.asarray(rows)
        per_pair = {"ssim": (ssim, gen, tgt), "mask_ssim": (ssim, gen_masked, tgt_masked), "psnr": (psnr, gen, tgt),
                    "psnr_legacy_wrap": (psnr_legacy_wrap, gen, tgt), "l1": (l1, gen, tgt)}
        if lpips is not None:
            per_pair["lpips"] = (lpips.distance, gen, tgt)
        for name, (score, a, b) in per_pair.items():
            if name in wanted:
                tallies.per_pair[name][idx] = score(a, b)
        if "limb_region" in wanted:
            score_limbs(tallies, idx, [loader.condition(p) for p in batch],
                        [loader.condition_keypoints(p) for p in batch], gen, tgt, kps)
        if use_inception:
            features, logits = inception.embed(gen, settings.batch_size)
            tallies.features.append(features)
            tallies.logits.append(logits)
            if "mask_is" in wanted:
                tallies.mask_logits.append(inception.embed(gen_masked, settings.batch_size)[1])
        for j, i in enumerate(rows):
            if i in pose_rows:
                pred = estimator.estimate(gen[j])
                tallies.no_person_generated += int((np.asarray(pred) == -1).all())
                if batch[j].target not in target_poses:
                    target_poses[batch[j].target] = estimator.estimate(tgt[j])
                tallies.pck_est.add(pred, target_poses[batch[j].target])
                tallies.pck_gt.add(pred, kps[j])
                tallies.pck_real.add(target_poses[batch[j].target], kps[j])
    return tallies


def score_limbs(t: Tallies, idx: np.ndarray, conditions: list[np.ndarray | None], kp_conditions: list[np.ndarray | None],
                gen: np.ndarray, tgt: np.ndarray, kps: list[np.ndarray]) -> None:
    """The limb-region margins of a batch's pairs whose condition image and pose are known."""
    known = [j for j, (c, k) in enumerate(zip(conditions, kp_conditions)) if c is not None and k is not None]
    t.no_condition += len(idx) - len(known)
    if known:
        m = limb_margins(gen[known], tgt[known], np.stack([conditions[j] for j in known]),
                         np.stack([kps[j] for j in known]), np.stack([kp_conditions[j] for j in known]))
        t.per_pair["limb_margin"][idx[known]] = m["margin"]
        t.per_pair["limb_margin_plain"][idx[known]] = m["margin_plain"]


def limb_metrics(t: Tallies, wanted: set[str]) -> dict[str, Any]:
    """limb_region: the fraction of pairs whose generated image is closer to the target than to the
    condition in the target's limb region (``metrics.limbs``)."""
    if "limb_region" not in wanted:
        return {}
    if t.no_condition == t.n:
        return {"limb_region": skipped("no condition image or pose available (pass images=DIR, and an annotation "
                                       "file that has the condition images)")}
    entry = limb_region_score(t.per_pair["limb_margin"], t.per_pair["limb_margin_plain"])
    entry["pairs_left_out"] -= t.no_condition
    return {"limb_region": {**entry, "pairs_without_condition": t.no_condition}}


def pixel_metrics(t: Tallies, wanted: set[str]) -> dict[str, Any]:
    """SSIM, mask-SSIM, both PSNRs and L1: the per-pair scores averaged, with their settings."""
    metrics: dict[str, Any] = {}
    if "ssim" in wanted:
        metrics["ssim"] = {"value": _finite(np.mean(t.per_pair["ssim"])), "n_images": t.n, "settings": SSIM_SETTINGS}
    if "mask_ssim" in wanted:
        metrics["mask_ssim"] = {"value": _finite(np.mean(t.per_pair["mask_ssim"])), "n_images": t.n,
                                "settings": SSIM_SETTINGS, "mask": MASK_SETTINGS}
    for name, settings in (("psnr", PSNR_SETTINGS), ("psnr_legacy_wrap", PSNR_LEGACY_WRAP_SETTINGS)):
        if name in wanted:
            finite = t.per_pair[name][np.isfinite(t.per_pair[name])]
            metrics[name] = ({"value": float(finite.mean()), "n_images": len(finite)} if len(finite) else
                             skipped("every pair is identical to its target (infinite PSNR)", n_images=0))
            metrics[name].update(identical_pairs=int(t.n - len(finite)), settings=settings)
    if "l1" in wanted:
        metrics["l1"] = {"value": float(np.mean(t.per_pair["l1"])), "n_images": t.n, "settings": L1_SETTINGS}
    return metrics


def network_metrics(t: Tallies, settings: MetricSettings, inception: FeatureExtractor | None,
                     inception_reason: str, lpips: LPIPS | None, lpips_reason: str,
                     train_images: str | Path | None, size: tuple[int, int], progress: bool) -> dict[str, Any]:
    """IS, mask-IS, FID, KID and LPIPS from the pass's network outputs, or why each was skipped."""
    wanted = set(settings.include)
    metrics: dict[str, Any] = {}
    network = inception.provenance if inception is not None else None
    for name, logits, what in (("is", t.logits, "the generated images"),
                               ("mask_is", t.mask_logits, "the generated images, background masked out")):
        if name not in wanted:
            continue
        if inception is None:
            metrics[name] = skipped(inception_reason)
            continue
        try:
            mean, std = inception_score(np.concatenate(logits), settings.is_splits)
            metrics[name] = {"value": mean, "std": std}
        except ValueError as exc:
            metrics[name] = skipped(str(exc))
        metrics[name].update(n_images=t.n, splits=settings.is_splits, order="sorted by pair name, then "
                             "IS_SETTINGS' shuffle", of=what, network=network, settings=IS_SETTINGS,
                             **({"mask": MASK_SETTINGS} if name == "mask_is" else {}))
    for name in ("fid", "kid"):
        if name not in wanted:
            continue
        if inception is None:
            metrics[name] = skipped(inception_reason)
        elif not train_images:
            metrics[name] = skipped("no real images: set train_images=DIR (the training images)")
        elif t.n < 2:
            metrics[name] = skipped(f"{name.upper()} needs at least 2 generated images, got {t.n}")
    if {"fid", "kid"} & wanted and not {"fid", "kid"} & set(metrics):
        mu_r, sigma_r, feats_r, real = real_features(inception, Path(train_images), size, settings, progress)
        feats_g = np.concatenate(t.features)
        if "fid" in wanted:
            mu_g, sigma_g = feature_statistics(feats_g)
            metrics["fid"] = {"value": frechet_distance(mu_g, sigma_g, mu_r, sigma_r), "n_generated": t.n,
                              "real": real, "network": network, "settings": FID_SETTINGS}
        if "kid" in wanted:
            mean, std, used = kernel_inception_distance(feats_g, feats_r, settings.kid_subsets,
                                                        settings.kid_subset_size)
            metrics["kid"] = {"value": mean, "std": std, "subsets": settings.kid_subsets, "subset_size": used,
                              "n_generated": t.n, "real": real, "network": network, "settings": KID_SETTINGS}
    if "lpips" in wanted:
        metrics["lpips"] = ({"value": float(np.mean(t.per_pair["lpips"])), "n_images": t.n,
                             "network": lpips.provenance} if lpips is not None else skipped(lpips_reason))
    return metrics


def pose_metrics(t: Tallies, settings: MetricSettings, estimator: Any, reason: str) -> dict[str, Any]:
    """PCKh against the estimator on the real target and against the annotation, with the estimator's
    own ceiling (the real target scored the same way)."""
    metrics: dict[str, Any] = {}
    info = getattr(estimator, "provenance", None) or (
        {"estimator": "poseformats.estimate.PoseEstimator (mediapipe BlazePose full, model_complexity=1, mapped to "
                      "OpenPose-18)", "visibility": settings.pose_visibility} if estimator is not None else None)
    for name, acc, gt in (("pckh", t.pck_est, "the pose estimator on the real target"),
                          ("pckh_gt", t.pck_gt, "the annotation keypoints of the target")):
        if name not in settings.include:
            continue
        if estimator is None:
            metrics[name] = skipped(reason)
            continue
        metrics[name] = acc.result()
        if acc.value is None:
            metrics[name]["skipped"] = "no pair has at least two ground-truth head joints"
        metrics[name].update(prediction="the pose estimator on the generated image", ground_truth=gt,
                             n_pairs=t.pose_pairs, generated_without_any_joint=t.no_person_generated,
                             estimator=info, images_at="the compared size", settings=PCKH_SETTINGS)
        if name == "pckh_gt":  # the estimator's own ceiling: the same score for the real target image
            metrics[name]["real_target_reference"] = t.pck_real.result()
    return metrics

