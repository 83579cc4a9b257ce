"""Score a folder of generated images (or a baseline) against their targets: the result dict and files."""

from __future__ import annotations

import datetime as _dt
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy
import skimage
import torch
import torchvision

from pona_model.evaluation.loading import PairImages
from pona_model.evaluation.networks import load_networks, make_pose_estimator
from pona_model.evaluation.pairs import find_pairs
from pona_model.evaluation.pictures import write_pictures
from pona_model.evaluation.scoring import (
    limb_metrics,
    network_metrics,
    pixel_metrics,
    pose_metrics,
    score_pairs,
)
from pona_model.evaluation.selection import SELECTION_SEED, select_pairs, subset
from pona_model.evaluation.settings import ALL_METRICS, RESULT_FORMAT, EvaluationError, MetricSettings
from pona_model.metrics.images import RESIZE_DESCRIPTION
from pona_model.metrics.inception import FeatureExtractor
from pona_model.metrics.lpips import LPIPS
from pona_model.metrics.lpips import MIN_SIZE as LPIPS_MIN_SIZE
from poseformats.annotations import read_annotations, read_pairs
from runtime.atomic import atomic_write_text
from runtime.device import resolve_device


def pinned(size: tuple[int, int], fmt_used: str) -> dict[str, Any]:
    """What is fixed for every metric of a result: the compared size, resize, data, sources, order, versions."""
    return {
        "compared_size": list(size),
        "resize": RESIZE_DESCRIPTION + " (applied where an image's size differs from the compared size)",
        "data": "8-bit RGB as stored (PNG is lossless; PATN strips are JPEG); all metrics on 0..255 values "
                "unless their settings say otherwise",
        "target_source": ("the vis strip's target panel (JPEG), as PATN's scripts" if fmt_used == "vis"
                          else "the real image file in images"),
        "generated_source": {"images": "the generated image files", "vis": "the vis strip's last panel",
                             "baseline": "the condition image unchanged (identity baseline)"}[fmt_used],
        "keypoints": "annotation keypoints scaled from the stored target image's frame to the compared size",
        "order": "pairs sorted by name",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__,
                     "torch": torch.__version__, "torchvision": torchvision.__version__,
                     "torch-fidelity": version("torch-fidelity"), "lpips": version("lpips")},
    }


def evaluate_folder(generated: str | Path | None, annotations: str | Path | dict[str, np.ndarray], *,
                    images: str | Path | None = None, pairs: str | Path | pd.DataFrame | None = None,
                    train_images: str | Path | None = None, out: str | Path | None = None,
                    settings: MetricSettings | None = None, fmt: str = "auto", baseline: str = "",
                    label: str = "", grid_pairs: int = 8, sheet_conditions: int = 3, sheet_poses: int = 6,
                    inception: FeatureExtractor | None = None, lpips: LPIPS | None = None,
                    pose_estimator: Any = None, provenance: dict[str, Any] | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Score the generated images in ``generated`` (or a ``baseline``) against their targets.

    Returns the result dict (``metrics``: every metric with its details, or its skip reason;
    ``scores``: the flat view) and, with ``out``, writes it as JSON there, with the per-pair CSV
    (``<out stem>_pairs.csv``), the comparison grid (``<out stem>_grid.png``) and the sheet
    (``<out stem>_sheet.png``) beside it. ``inception``, ``lpips`` and ``pose_estimator`` replace the
    networks loaded from the settings (tests pass small stand-ins; their provenance is recorded).
    ``provenance`` (e.g. the checkpoint that made the images) is copied into the result.
    """
    settings = settings or MetricSettings()
    wanted = set(settings.include)
    generated_dir = Path(generated) if generated else None
    images_dir = Path(images) if images else None
    keypoints = annotations if isinstance(annotations, dict) else read_annotations(annotations)
    pairs_df = pairs if isinstance(pairs, pd.DataFrame) or pairs is None else read_pairs(pairs)
    if pairs_df is not None:  # only the selected rows of a pairs file need to be generated
        total = len(pairs_df)
        selected, fmt_used = find_pairs(generated_dir, keypoints, select_pairs(pairs_df, settings.max_pairs), fmt,
                                        images_dir, baseline)
    else:
        found, fmt_used = find_pairs(generated_dir, keypoints, None, fmt, images_dir, baseline)
        total = len(found)
        selected = [found[i] for i in subset(total, settings.max_pairs)]
    if not selected:
        raise EvaluationError("no pairs to score (the pairs file is empty)")
    loader = PairImages(fmt_used, images_dir, keypoints)
    loader.size = ((int(settings.size[0]), int(settings.size[1])) if settings.size
                   else loader.generated_raw(selected[0]).shape[:2])
    size = loader.size

    device = resolve_device(settings.device)
    inception, inception_reason, lpips, lpips_reason = load_networks(settings, wanted, inception, lpips, device)
    if lpips is not None and min(size) < LPIPS_MIN_SIZE:
        lpips, lpips_reason = None, (f"images of {size[0]} x {size[1]} are too small for LPIPS's AlexNet "
                                     f"(at least {LPIPS_MIN_SIZE} pixels a side); set metrics.size")
    estimator, pose_reason = pose_estimator, ""
    if estimator is None and wanted & {"pckh", "pckh_gt"}:
        estimator, pose_reason = make_pose_estimator(settings, images_dir)
    try:
        tallies = score_pairs(selected, loader, settings, inception, lpips, estimator, progress)
    finally:
        if pose_estimator is None and hasattr(estimator, "close"):
            estimator.close()

    metrics = {**pixel_metrics(tallies, wanted),
               **network_metrics(tallies, settings, inception, inception_reason, lpips, lpips_reason,
                                  train_images, size, progress),
               **pose_metrics(tallies, settings, estimator, pose_reason),
               **limb_metrics(tallies, wanted)}
    n = len(selected)
    selection = "all" if n == total else f"{n} of {total}, numpy default_rng({SELECTION_SEED}) subset"
    result: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "label": label or (f"{baseline} baseline" if baseline else (generated_dir.name if generated_dir else "")),
        "inputs": {"generated": str(generated_dir) if generated_dir else None, "format": fmt_used,
                   "baseline": baseline or None, "images": str(images_dir) if images_dir else None,
                   "annotations": str(annotations) if not isinstance(annotations, dict) else None,
                   "pairs": str(pairs) if isinstance(pairs, (str, Path)) else None,
                   "train_images": str(train_images) if train_images else None},
        "pairs": {"found": total, "used": n, "selection": selection},
        "pinned": pinned(size, fmt_used),
        "metrics": {k: metrics[k] for k in ALL_METRICS if k in metrics},
        "scores": scores_summary(metrics),
    }
    if provenance:
        result["provenance"] = provenance
    if out:
        out = Path(out)
        result["files"] = write_pictures(out, selected, loader, grid_pairs, sheet_conditions, sheet_poses)
        table = pd.DataFrame({"pair": [p.name for p in selected],
                              **{k: v for k, v in tallies.per_pair.items() if np.isfinite(v).any()}})
        pairs_csv = out.with_name(out.stem + "_pairs.csv")
        atomic_write_text(pairs_csv, table.to_csv(index=False, float_format="%.6g"))
        result["files"]["per_pair"] = str(pairs_csv)
        result["files"]["json"] = str(out)
        atomic_write_text(out, json.dumps(result, indent=2, allow_nan=False) + "\n")
    return result


def scores_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The flat view for reports: ``{name: value}`` for every computed metric (plus ``is_std`` and
    ``mask_is_std``), and ``{name_skipped: reason}`` for every skipped one."""
    scores: dict[str, Any] = {}
    for name, m in metrics.items():
        if m.get("value") is None:
            scores[f"{name}_skipped"] = m.get("skipped", "no value")
            continue
        scores[name] = m["value"]
        if "std" in m:
            scores[f"{name}_std"] = m["std"]
    return scores

