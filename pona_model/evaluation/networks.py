"""The networks behind IS / FID / LPIPS / PCKh, each loaded from local files or reported absent with the
reason, and the real side of FID (statistics of the training images, cached)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pona_model.evaluation.selection import SELECTION_SEED, subset
from pona_model.evaluation.settings import EvaluationError, MetricSettings
from pona_model.metrics.images import RESIZE_DESCRIPTION, list_images, load_rgb, resize_rgb
from pona_model.metrics.inception import (
    FeatureExtractor,
    cached_statistics,
    default_stats_cache,
    files_digest,
    find_inception_weights,
    inception_absent_reason,
    load_inception,
)
from pona_model.metrics.lpips import LPIPS, find_lpips_weights, load_lpips, lpips_absent_reason


def load_networks(settings: MetricSettings, wanted: set[str], inception: FeatureExtractor | None,
                   lpips: LPIPS | None, device: torch.device) -> tuple[FeatureExtractor | None, str, LPIPS | None, str]:
    """The Inception and LPIPS networks (given ones win), each with the reason when it is absent."""
    inception_reason = lpips_reason = ""
    if inception is None and wanted & {"is", "mask_is", "fid"}:
        path = find_inception_weights(settings.inception_weights)
        if path is None:
            inception_reason = inception_absent_reason()
        else:
            inception = load_inception(path, device)
    if lpips is None and "lpips" in wanted:
        net, heads = find_lpips_weights(settings.alexnet_weights, settings.lpips_weights)
        if net is None or heads is None:
            lpips_reason = lpips_absent_reason(net, heads)
        else:
            lpips = load_lpips(net, heads, device)
    return inception, inception_reason, lpips, lpips_reason


# Files a SynthMarket root holds beside its image folders (synthmarket, synthmarket.auxiliary).
SYNTHMARKET_MARKERS = ("synthmarket.json", "auxiliary.json")


def is_synthmarket(images: str | Path | None) -> bool:
    """Whether ``images`` is a SynthMarket image folder (or root): a marker file beside or in it."""
    if not images:
        return False
    folder = Path(images)
    return any((d / m).is_file() for d in (folder, folder.parent) for m in SYNTHMARKET_MARKERS)


def pose_estimator_kind(choice: str, images: str | Path | None) -> tuple[str, str]:
    """``metrics.pose_estimator`` resolved to synth or photo, with why: auto picks the synth estimator
    for SynthMarket images (the photo one finds few people in them) and the photo one elsewhere."""
    if choice != "auto":
        return choice, f"metrics.pose_estimator={choice}"
    if is_synthmarket(images):
        return "synth", f"auto: SynthMarket images ({' or '.join(SYNTHMARKET_MARKERS)} beside the image folder)"
    return "photo", "auto: not SynthMarket images"


def make_pose_estimator(settings: MetricSettings, images: str | Path | None = None) -> tuple[Any, str]:
    """The offline pose estimator for PCKh that ``settings.pose_estimator`` names (``auto`` decides by
    ``images``), or None with the reason it is unavailable. Its ``provenance`` says which one scored."""
    kind, why = pose_estimator_kind(settings.pose_estimator, images)
    if kind == "synth":
        from pona_model.metrics.synth_pose import load_synth_estimator
        from runtime.releases import ReleaseError

        try:
            estimator = load_synth_estimator(visibility=settings.pose_visibility)
        except (ReleaseError, ValueError) as exc:
            return None, f"the synth pose estimator is unavailable ({why}): {exc}"
        estimator.provenance.update(pose_estimator="synth", chosen_by=why)
        return estimator, ""
    try:
        from poseformats.estimate import PoseEstimator

        estimator = PoseEstimator(visibility=settings.pose_visibility)
    except ImportError as exc:
        return None, f"the offline pose estimator is unavailable: {exc}"
    estimator.provenance = {"estimator": "poseformats.estimate.PoseEstimator (mediapipe BlazePose full, "
                                         "model_complexity=1, mapped to OpenPose-18)",
                            "visibility": settings.pose_visibility, "pose_estimator": "photo", "chosen_by": why}
    return estimator, ""


def real_features(net: FeatureExtractor, folder: Path, size: tuple[int, int], settings: MetricSettings,
                   progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Mean, covariance and the features (float32) of the real images, and where they came from."""
    paths = list_images(folder)
    if len(paths) < 2:
        raise EvaluationError(f"train_images={folder} holds {len(paths)} image(s); FID needs at least 2")
    chosen = subset(len(paths), settings.fid_max_train_images)
    used = [paths[i] for i in chosen]
    key = {"images": str(folder.resolve()), "files": files_digest(paths), "n_images": len(used),
           "selection_seed": SELECTION_SEED, "size": list(size), "resize": RESIZE_DESCRIPTION,
           "network": net.fingerprint, "input": net.provenance.get("input", "")}
    cache = Path(settings.fid_stats).expanduser() if settings.fid_stats else default_stats_cache(key)

    def compute() -> np.ndarray:
        feats = []
        bar = tqdm(range(0, len(used), settings.batch_size), desc="FID real images", unit="batch",
                   disable=not progress)
        for start in bar:
            batch = np.stack([resize_rgb(load_rgb(p), size) for p in used[start:start + settings.batch_size]])
            feats.append(net.embed(batch, settings.batch_size)[0])
        return np.concatenate(feats)

    mu, sigma, features, from_cache = cached_statistics(cache, key, compute)
    info = {"images": str(folder), "n_real": len(features), "of_images": len(paths),
            "selection": "all" if len(used) == len(paths) else f"numpy default_rng({SELECTION_SEED}) subset",
            "cache": str(cache), "from_cache": from_cache}
    return mu, sigma, features, info

