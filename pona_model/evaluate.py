"""Score generated person images against their targets: the paper's Table I metrics, FID and LPIPS.

Reads a folder of generated images named ``<from>___<to>.png`` (``pona_model.generate``'s output) or
PATN's 5-panel ``<from>___<to>_vis.jpg`` strips (condition | condition pose | target | target pose |
generated; the target is then taken from the strip, as PATN's scripts do), so other methods' results
are scored the same way. Writes a JSON with every metric and the details that move the numbers, a
per-pair CSV, a comparison grid and a same-person-many-poses sheet, and prints a table like Table I.

Metrics: SSIM and mask-SSIM (PATN settings; body mask from the target keypoints), PSNR, L1, IS and
mask-IS, PCKh (the offline pose estimator on the generated image against the estimator on the real
target, and against the annotation keypoints), FID (real statistics from ``train_images``, cached) and
LPIPS. Network weights cannot be downloaded: they come from local files (``metrics.*_weights``) or the
torch hub cache, and a metric whose weights are absent is reported as skipped with the reason.

Examples:
  python -m pona_model.evaluate generated=runs/pona-synth/generated \\
      images=data/synthmarket/bounding_box_test \\
      annotations=data/synthmarket/market-annotation-test.csv pairs=data/synthmarket/market-pairs-test.csv \\
      train_images=data/synthmarket/bounding_box_train
  python -m pona_model.evaluate checkpoint=runs/pona-synth/checkpoint.pt images=... annotations=... pairs=...
  python -m pona_model.evaluate baseline=identity metrics.size=[64,32] out=runs/identity/metrics.json \\
      images=... annotations=... pairs=...
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy
import torch
import torchvision
from tqdm import tqdm

from pona_model.annotations import FormatError, read_annotations, read_pairs
from pona_model.atomic import atomic_write_text
from pona_model.checkpoint import CheckpointError
from pona_model.cli import param, parse_config, to_dict
from pona_model.comparison import SheetBlock, comparison_grid, enlarge, pose_sheet, save_png
from pona_model.device import resolve_device
from pona_model.generate import output_name
from pona_model.losses import MissingWeightsError
from pona_model.metrics.images import (
    RESIZE_DESCRIPTION,
    VIS_CONDITION,
    VIS_GENERATED,
    VIS_SUFFIX,
    VIS_TARGET,
    image_size,
    list_images,
    load_rgb,
    resize_rgb,
    vis_panel,
)
from pona_model.metrics.inception import (
    FeatureExtractor,
    cached_statistics,
    default_stats_cache,
    feature_statistics,
    files_digest,
    find_inception_weights,
    frechet_distance,
    inception_absent_reason,
    inception_score,
    load_inception,
)
from pona_model.metrics.lpips import LPIPS, find_lpips_weights, load_lpips, lpips_absent_reason
from pona_model.metrics.lpips import MIN_SIZE as LPIPS_MIN_SIZE
from pona_model.metrics.masks import MASK_SETTINGS, apply_mask, body_mask
from pona_model.metrics.pckh import PCKH_SETTINGS, PCKhAccumulator
from pona_model.metrics.pixel import L1_SETTINGS, PSNR_SETTINGS, l1, psnr
from pona_model.metrics.ssim import SSIM_SETTINGS, ssim
from pona_model.pose import scale_keypoints

log = logging.getLogger(__name__)

RESULT_FORMAT = "pona-generator-metrics/1"
ALL_METRICS = ("ssim", "mask_ssim", "psnr", "l1", "is", "mask_is", "pckh", "pckh_gt", "fid", "lpips")
PER_PAIR = ("ssim", "mask_ssim", "psnr", "l1", "lpips")  # the metrics with a value per pair (the _pairs.csv)
SELECTION_SEED = 0
PICTURE_MIN_CELL = 128  # pictures of smaller images are enlarged by an integer factor (nearest neighbour)
# The paper's Table I row for PoNA on Market-1501 (128 x 64, TF Inception, OpenPose); for scale only.
PAPER_TABLE_I = {"ssim": 0.315, "is": 3.487, "mask_ssim": 0.814, "mask_is": 3.867, "psnr": 28.257, "pckh": 0.94}
TABLE_COLUMNS = (("ssim", "SSIM"), ("is", "IS"), ("mask_ssim", "mask-SSIM"), ("mask_is", "mask-IS"),
                 ("psnr", "PSNR"), ("pckh", "PCKh"), ("pckh_gt", "PCKh-gt"), ("l1", "L1"), ("fid", "FID"),
                 ("lpips", "LPIPS"))


class EvaluationError(ValueError):
    """Inputs that cannot be scored as given; the message says what is wrong and how to fix it."""


@dataclass
class MetricSettings:
    include: list[str] = param(list(ALL_METRICS), "metrics to compute (any of: " + ", ".join(ALL_METRICS) + ")")
    size: list[int] = param([], "compare at [H, W]: generated and real images resized to it (PIL bicubic); "
                            "[] = the generated images' own size")
    max_pairs: int = param(0, "score at most this many pairs (a seeded random subset); 0 = all")
    batch_size: int = param(32, "images per network forward pass")
    device: str = param("auto", "device of the Inception / LPIPS networks: auto, cpu, cuda, cuda:N, mps")
    is_splits: int = param(10, "Inception Score splits")
    inception_weights: str = param("", "Inception-v3 state dict (pt_inception-2015-12-05-6726825d.pth or "
                                   "torchvision's inception_v3_google-0cc3c7bd.pth); empty = torch hub cache")
    fid_stats: str = param("", "cache file of the real FID statistics; empty = ~/.cache/pona/fid-stats/<key>.npz")
    fid_max_train_images: int = param(0, "real images for the FID statistics (seeded random subset); 0 = all")
    alexnet_weights: str = param("", "torchvision AlexNet state dict for LPIPS; empty = torch hub cache")
    lpips_weights: str = param("", "LPIPS v0.1 AlexNet heads (the lpips package's alex.pth); empty = hub cache "
                               "or an installed lpips package")
    pose_max_pairs: int = param(0, "pairs whose images go through the pose estimator for PCKh (seeded random "
                                "subset, about 70 ms per image on a CPU); 0 = all")
    pose_visibility: float = param(0.5, "pose estimator: joints below this visibility count as missing")

    def __post_init__(self) -> None:
        unknown = [m for m in self.include if m not in ALL_METRICS]
        if unknown:
            raise ValueError(f"include: unknown metric(s) {unknown}; choose from {list(ALL_METRICS)}")
        if self.size and (len(self.size) != 2 or min(self.size) < 1):
            raise ValueError(f"size must be [] or [H, W] with positive values, got {self.size}")
        if min(self.max_pairs, self.fid_max_train_images, self.pose_max_pairs) < 0:
            raise ValueError("max_pairs, fid_max_train_images and pose_max_pairs must be >= 0")
        if self.batch_size < 1 or self.is_splits < 1:
            raise ValueError("batch_size and is_splits must be >= 1")


@dataclass
class EvaluateConfig:
    generated: str = param("", "folder of generated <from>___<to>.png images or PATN <from>___<to>_vis.jpg strips "
                           "(with checkpoint=: where to generate them; default <checkpoint dir>/test-generated-<sha>)")
    images: str = param("", "folder of the real images (targets, and conditions for pictures and the baseline)")
    annotations: str = param("", "PATN annotation CSV of the target images (e.g. market-annotation-test.csv)")
    pairs: str = param("", "PATN pairs CSV: score exactly these pairs (all must be generated); empty = every "
                       "pair found in generated")
    train_images: str = param("", "folder of the training images: the real side of FID (FID is skipped without)")
    format: str = param("auto", "generated files: images (<name>.png/.jpg), vis (PATN strips) or auto",
                        choices=["auto", "images", "vis"])
    baseline: str = param("", "score a baseline instead of generated images: identity = the condition image "
                          "unchanged (needs images and pairs)", choices=["", "identity"])
    checkpoint: str = param("", "generate the pairs with this training checkpoint first (needs images, "
                            "annotations, pairs)")
    out: str = param("", "result JSON; empty = <generated>/metrics.json (required for a baseline)")
    label: str = param("", "row name in the printed table; empty = the folder, checkpoint or baseline name")
    grid_pairs: int = param(8, "pairs in the comparison grid (0 = no grid)")
    sheet_conditions: int = param(3, "condition images in the same-person-many-poses sheet (0 = no sheet)")
    sheet_poses: int = param(6, "target poses per condition image in the sheet")
    progress: bool = param(True, "show progress bars")
    metrics: MetricSettings = param(default_factory=MetricSettings, help="metric settings")


# ----------------------------------------------------------------------------- finding the pairs

@dataclass
class ScoredPair:
    """One pair to score: its ``<from>___<to>`` name, the condition and target image names (the
    condition may be unknown), and the generated image file or PATN strip (neither for a baseline)."""

    name: str
    source: str | None
    target: str
    file: Path | None = None
    strip: Path | None = None


def _by_stem(names: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in names:
        stem = Path(n).stem
        if stem in out and out[stem] != n:
            raise EvaluationError(f"{what}: {out[stem]!r} and {n!r} share the stem {stem!r}, so pair names "
                                  "<from>___<to> cannot tell them apart; rename one")
        out[stem] = n
    return out


def find_pairs(generated: Path | None, annotations: dict[str, np.ndarray], pairs: pd.DataFrame | None,
               fmt: str = "auto", images: Path | None = None, baseline: str = "") -> tuple[list[ScoredPair], str]:
    """The pairs to score, sorted by name, and the format used ('images', 'vis' or 'baseline')."""
    if pairs is not None:
        unannotated = sorted(set(pairs["to"]) - set(annotations))
        if unannotated:
            raise EvaluationError(f"{len(unannotated)} target(s) of the pairs have no annotation (e.g. "
                                  f"{unannotated[:3]}); pass the annotation CSV of the test images")
    if baseline:
        if pairs is None or images is None:
            raise EvaluationError("baseline=identity needs pairs=PAIRS.csv and images=DIR (the condition images)")
        found = [ScoredPair(output_name(a, b), a, b) for a, b in zip(pairs["from"], pairs["to"])]
        return sorted(found, key=lambda p: p.name), "baseline"
    if generated is None or not generated.is_dir():
        raise EvaluationError(f"generated folder {generated} does not exist; make it with python -m "
                              "pona_model.generate, or pass checkpoint=... to generate first")
    files: dict[str, Path] = {}
    strips: dict[str, Path] = {}
    for p in sorted(generated.iterdir()):
        if not p.is_file() or "___" not in p.name:
            continue
        if p.name.endswith(VIS_SUFFIX):
            strips[p.name[: -len(VIS_SUFFIX)]] = p
        elif p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            files.setdefault(p.stem, p)
    if fmt == "auto":
        fmt = "images" if files else "vis"
    chosen = files if fmt == "images" else strips
    if not chosen:
        kind = "<from>___<to>.png images" if fmt == "images" else "<from>___<to>_vis.jpg strips"
        raise EvaluationError(f"no generated {kind} in {generated}")
    target_names = _by_stem(list(annotations), f"annotations ({len(annotations)} names)")
    image_names = _by_stem([p.name for p in list_images(images)], str(images)) if images else {}

    def make(name: str, source: str | None, target: str) -> ScoredPair:
        path = chosen[name]
        return ScoredPair(name, source, target, file=path if fmt == "images" else None,
                          strip=path if fmt == "vis" else None)

    result: list[ScoredPair] = []
    if pairs is not None:
        missing = []
        for a, b in zip(pairs["from"], pairs["to"]):
            name = output_name(a, b)
            if name in chosen:
                result.append(make(name, a, b))
            else:
                missing.append(name)
        if missing:
            raise EvaluationError(f"{len(missing)} of {len(pairs)} pairs have no generated image in {generated} "
                                  f"(e.g. {missing[:3]}); generate them, or leave pairs= empty to score the "
                                  "pairs that are there")
    else:
        for name in chosen:
            parts = name.split("___")
            if len(parts) != 2 or not all(parts):
                raise EvaluationError(f"{chosen[name]}: the name is not <from>___<to>")
            src, tgt = parts
            if tgt not in target_names:
                raise EvaluationError(f"{chosen[name]}: the target {tgt!r} has no row in the annotation file; "
                                      "pass the annotation CSV of the test images")
            source = target_names.get(src) or image_names.get(src)
            result.append(make(name, source, target_names[tgt]))
    return sorted(result, key=lambda p: p.name), fmt


def _subset(n: int, k: int, seed: int = SELECTION_SEED) -> np.ndarray:
    """Sorted indices of a seeded random k-subset of range(n) (all of them when k is 0 or >= n)."""
    if k == 0 or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def select_pairs(pairs: pd.DataFrame, max_pairs: int = 0) -> pd.DataFrame:
    """The rows of a pairs table that ``evaluate_folder`` scores with ``metrics.max_pairs``: sorted by
    pair name, then a seeded random subset of ``max_pairs`` (all when 0). Generate these first."""
    order = np.argsort([output_name(a, b) for a, b in zip(pairs["from"], pairs["to"])], kind="stable")
    rows = pairs.iloc[order]
    return rows.iloc[_subset(len(rows), max_pairs)].reset_index(drop=True)


# ----------------------------------------------------------------------------- loading the images

@dataclass
class _Images:
    """Loads a pair's generated, target and condition images and target keypoints at the compared size."""

    fmt: str
    images: Path | None
    annotations: dict[str, np.ndarray]
    size: tuple[int, int] | None = None
    _strip_cache: dict[str, np.ndarray] = field(default_factory=dict)

    def _strip(self, pair: ScoredPair) -> np.ndarray:
        if pair.name not in self._strip_cache:
            self._strip_cache.clear()  # one strip at a time: its panels are read together
            self._strip_cache[pair.name] = load_rgb(pair.strip)
        return self._strip_cache[pair.name]

    def _real(self, name: str, role: str) -> np.ndarray:
        if self.images is None:
            raise EvaluationError(f"the {role} image {name!r} is needed: pass images=DIR (the real images)")
        return load_rgb(self.images / name)

    def generated_raw(self, pair: ScoredPair) -> np.ndarray:
        if self.fmt == "images":
            return load_rgb(pair.file)
        if self.fmt == "vis":
            return vis_panel(self._strip(pair), VIS_GENERATED)
        return self._real(pair.source, "condition")  # baseline=identity

    def _at_size(self, image: np.ndarray) -> np.ndarray:
        assert self.size is not None
        return resize_rgb(image, self.size)

    def generated(self, pair: ScoredPair) -> np.ndarray:
        return self._at_size(self.generated_raw(pair))

    def target(self, pair: ScoredPair) -> np.ndarray:
        if self.fmt == "vis":
            return self._at_size(vis_panel(self._strip(pair), VIS_TARGET))
        return self._at_size(self._real(pair.target, "target"))

    def condition(self, pair: ScoredPair) -> np.ndarray | None:
        if self.fmt == "vis":
            return self._at_size(vis_panel(self._strip(pair), VIS_CONDITION))
        if pair.source is None or self.images is None or not (self.images / pair.source).is_file():
            return None
        return self._at_size(load_rgb(self.images / pair.source))

    def target_keypoints(self, pair: ScoredPair) -> np.ndarray:
        """Annotation keypoints of the target, moved from the stored target image's frame (the panel's
        frame for strips without the real image) to the compared size."""
        kp = self.annotations[pair.target]
        stored = None
        if self.images is not None and (self.images / pair.target).is_file():
            stored = image_size(self.images / pair.target)
        elif self.fmt == "vis":
            stored = vis_panel(self._strip(pair), VIS_TARGET).shape[:2]
        if stored is None:
            raise EvaluationError(f"target image {pair.target!r} not found in {self.images}")
        assert self.size is not None
        return scale_keypoints(np.asarray(kp, dtype=np.int64), tuple(stored), self.size)


# ----------------------------------------------------------------------------- the networks

def _skipped(reason: str, **details: Any) -> dict[str, Any]:
    return {"value": None, "skipped": reason, **details}


def _load_networks(settings: MetricSettings, wanted: set[str], inception: FeatureExtractor | None,
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


def _make_pose_estimator(settings: MetricSettings) -> tuple[Any, str]:
    try:
        from pona_model.poses import PoseEstimator

        return PoseEstimator(visibility=settings.pose_visibility), ""
    except ImportError as exc:
        return None, f"the offline pose estimator is unavailable: {exc}"


def _real_features(net: FeatureExtractor, folder: Path, size: tuple[int, int], settings: MetricSettings,
                   progress: bool) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    paths = list_images(folder)
    if len(paths) < 2:
        raise EvaluationError(f"train_images={folder} holds {len(paths)} image(s); FID needs at least 2")
    chosen = _subset(len(paths), settings.fid_max_train_images)
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

    mu, sigma, n, from_cache = cached_statistics(cache, key, compute)
    info = {"images": str(folder), "n_real": n, "of_images": len(paths),
            "selection": "all" if len(used) == len(paths) else f"numpy default_rng({SELECTION_SEED}) subset",
            "cache": str(cache), "from_cache": from_cache}
    return mu, sigma, info


# ----------------------------------------------------------------------------- scoring

def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


@dataclass
class _Tallies:
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

    def __post_init__(self) -> None:
        self.per_pair = {k: np.full(self.n, np.nan) for k in PER_PAIR}


def _score_pairs(selected: list[ScoredPair], loader: _Images, settings: MetricSettings,
                 inception: FeatureExtractor | None, lpips: LPIPS | None, estimator: Any,
                 progress: bool) -> _Tallies:
    """One pass over the pairs in batches: every per-pair metric, the Inception outputs, the poses."""
    wanted, size = set(settings.include), loader.size
    tallies = _Tallies(len(selected))
    pose_rows = set(_subset(len(selected), settings.pose_max_pairs).tolist()) if estimator is not None else set()
    tallies.pose_pairs = len(pose_rows)
    target_poses: dict[str, np.ndarray] = {}  # a target image is estimated once, however many pairs share it
    use_inception = inception is not None and bool(wanted & {"is", "mask_is", "fid"})
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
                    "l1": (l1, gen, tgt)}
        if lpips is not None:
            per_pair["lpips"] = (lpips.distance, gen, tgt)
        for name, (score, a, b) in per_pair.items():
            if name in wanted:
                tallies.per_pair[name][idx] = score(a, b)
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


def _pixel_metrics(t: _Tallies, wanted: set[str]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    if "ssim" in wanted:
        metrics["ssim"] = {"value": _finite(np.mean(t.per_pair["ssim"])), "n_images": t.n, "settings": SSIM_SETTINGS}
    if "mask_ssim" in wanted:
        metrics["mask_ssim"] = {"value": _finite(np.mean(t.per_pair["mask_ssim"])), "n_images": t.n,
                                "settings": SSIM_SETTINGS, "mask": MASK_SETTINGS}
    if "psnr" in wanted:
        finite = t.per_pair["psnr"][np.isfinite(t.per_pair["psnr"])]
        metrics["psnr"] = ({"value": float(finite.mean()), "n_images": len(finite)} if len(finite) else
                           _skipped("every pair is identical to its target (infinite PSNR)", n_images=0))
        metrics["psnr"].update(identical_pairs=int(t.n - len(finite)), settings=PSNR_SETTINGS)
    if "l1" in wanted:
        metrics["l1"] = {"value": float(np.mean(t.per_pair["l1"])), "n_images": t.n, "settings": L1_SETTINGS}
    return metrics


def _network_metrics(t: _Tallies, settings: MetricSettings, inception: FeatureExtractor | None,
                     inception_reason: str, lpips: LPIPS | None, lpips_reason: str,
                     train_images: str | Path | None, size: tuple[int, int], progress: bool) -> dict[str, Any]:
    wanted = set(settings.include)
    metrics: dict[str, Any] = {}
    network = inception.provenance if inception is not None else None
    for name, logits, what in (("is", t.logits, "the generated images"),
                               ("mask_is", t.mask_logits, "the generated images, background masked out")):
        if name not in wanted:
            continue
        if inception is None:
            metrics[name] = _skipped(inception_reason)
            continue
        try:
            mean, std = inception_score(np.concatenate(logits), settings.is_splits)
            metrics[name] = {"value": mean, "std": std}
        except ValueError as exc:
            metrics[name] = _skipped(str(exc))
        metrics[name].update(n_images=t.n, splits=settings.is_splits, order="sorted by pair name", of=what,
                             network=network, **({"mask": MASK_SETTINGS} if name == "mask_is" else {}))
    if "fid" in wanted:
        if inception is None:
            metrics["fid"] = _skipped(inception_reason)
        elif not train_images:
            metrics["fid"] = _skipped("no real images: set train_images=DIR (the training images)")
        elif t.n < 2:
            metrics["fid"] = _skipped(f"FID needs at least 2 generated images, got {t.n}")
        else:
            mu_r, sigma_r, real = _real_features(inception, Path(train_images), size, settings, progress)
            mu_g, sigma_g = feature_statistics(np.concatenate(t.features))
            metrics["fid"] = {"value": frechet_distance(mu_g, sigma_g, mu_r, sigma_r), "n_generated": t.n,
                              "real": real, "network": network,
                              "covariance": "unbiased (N - 1); Tr sqrt via eigenvalues of S1^1/2 S2 S1^1/2"}
    if "lpips" in wanted:
        metrics["lpips"] = ({"value": float(np.mean(t.per_pair["lpips"])), "n_images": t.n,
                             "network": lpips.provenance} if lpips is not None else _skipped(lpips_reason))
    return metrics


def _pose_metrics(t: _Tallies, settings: MetricSettings, estimator: Any, reason: str) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    info = getattr(estimator, "provenance", None) or (
        {"estimator": "pona_model.poses.PoseEstimator (mediapipe BlazePose full, model_complexity=1, mapped to "
                      "OpenPose-18)", "visibility": settings.pose_visibility} if estimator is not None else None)
    for name, acc, gt in (("pckh", t.pck_est, "the pose estimator on the real target"),
                          ("pckh_gt", t.pck_gt, "the annotation keypoints of the target")):
        if name not in settings.include:
            continue
        if estimator is None:
            metrics[name] = _skipped(reason)
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


def _pinned(size: tuple[int, int], fmt_used: str) -> dict[str, Any]:
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
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "torch": torch.__version__,
                     "torchvision": torchvision.__version__},
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
        selected = [found[i] for i in _subset(total, settings.max_pairs)]
    if not selected:
        raise EvaluationError("no pairs to score (the pairs file is empty)")
    loader = _Images(fmt_used, images_dir, keypoints)
    loader.size = ((int(settings.size[0]), int(settings.size[1])) if settings.size
                   else loader.generated_raw(selected[0]).shape[:2])
    size = loader.size

    device = resolve_device(settings.device)
    inception, inception_reason, lpips, lpips_reason = _load_networks(settings, wanted, inception, lpips, device)
    if lpips is not None and min(size) < LPIPS_MIN_SIZE:
        lpips, lpips_reason = None, (f"images of {size[0]} x {size[1]} are too small for LPIPS's AlexNet "
                                     f"(at least {LPIPS_MIN_SIZE} pixels a side); set metrics.size")
    estimator, pose_reason = pose_estimator, ""
    if estimator is None and wanted & {"pckh", "pckh_gt"}:
        estimator, pose_reason = _make_pose_estimator(settings)
    try:
        tallies = _score_pairs(selected, loader, settings, inception, lpips, estimator, progress)
    finally:
        if pose_estimator is None and hasattr(estimator, "close"):
            estimator.close()

    metrics = {**_pixel_metrics(tallies, wanted),
               **_network_metrics(tallies, settings, inception, inception_reason, lpips, lpips_reason,
                                  train_images, size, progress),
               **_pose_metrics(tallies, settings, estimator, pose_reason)}
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
        "pinned": _pinned(size, fmt_used),
        "metrics": {k: metrics[k] for k in ALL_METRICS if k in metrics},
        "scores": scores_summary(metrics),
    }
    if provenance:
        result["provenance"] = provenance
    if out:
        out = Path(out)
        result["files"] = _write_pictures(out, selected, loader, grid_pairs, sheet_conditions, sheet_poses)
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


def _write_pictures(out: Path, pairs: list[ScoredPair], loader: _Images, grid_pairs: int, sheet_conditions: int,
                    sheet_poses: int) -> dict[str, Any]:
    """The comparison grid and the same-person-many-poses sheet beside ``out``; paths or skip reasons."""
    assert loader.size is not None
    factor = -(-PICTURE_MIN_CELL // loader.size[0])
    files: dict[str, Any] = {"picture_scale": factor}
    if grid_pairs > 0:
        picks = np.unique(np.linspace(0, len(pairs) - 1, min(grid_pairs, len(pairs))).round().astype(int)).tolist()
        rows = [(loader.condition(pairs[i]), pairs[i]) for i in picks]
        rows = [(c, p) for c, p in rows if c is not None]
        if rows:
            grid = comparison_grid([c for c, _ in rows], [loader.target_keypoints(p) for _, p in rows],
                                   [loader.generated(p) for _, p in rows], [loader.target(p) for _, p in rows])
            files["grid"] = str(out.with_name(out.stem + "_grid.png"))
            save_png(files["grid"], enlarge(grid, factor))
        else:
            files["grid"] = {"skipped": "no condition image available (pass images=DIR)"}
    if sheet_conditions > 0 and sheet_poses > 0:
        by_source: dict[str, list[ScoredPair]] = {}
        for p in pairs:
            if p.source is not None:
                by_source.setdefault(p.source, []).append(p)
        ranked = sorted(by_source.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:sheet_conditions]
        blocks = []
        for _, group in ranked:
            chosen = group[:sheet_poses]
            condition = loader.condition(chosen[0])
            if condition is None:
                continue
            blocks.append(SheetBlock(condition, [loader.target_keypoints(p) for p in chosen],
                                     {"generated": [loader.generated(p) for p in chosen]},
                                     [loader.target(p) for p in chosen]))
        if blocks:
            files["sheet"] = str(out.with_name(out.stem + "_sheet.png"))
            save_png(files["sheet"], enlarge(pose_sheet(blocks), factor))
            files["sheet_layout"] = ("per condition image: row 1 condition | target poses; row 2 generated; "
                                     "row 3 real targets")
        else:
            files["sheet"] = {"skipped": "no condition image available (pass images=DIR)"}
    return files


# ----------------------------------------------------------------------------- generator checkpoints

def evaluate_checkpoint(checkpoint: str | Path, images: str | Path, annotations: str | Path, pairs: str | Path,
                        generated: str | Path | None = None, *, out: str | Path | None = None,
                        batch_size: int = 16, device: str = "auto", num_workers: int = 0,
                        **kwargs: Any) -> dict[str, Any]:
    """Generate the pairs of ``pairs`` with a training checkpoint (those ``metrics.max_pairs`` selects; kept in
    ``generated``, default ``<checkpoint dir>/test-generated-<sha256[:12]>``; images already there are reused
    when ``generated/generator.json`` names the same checkpoint, an error otherwise) and score them with
    ``evaluate_folder`` (keyword arguments pass through). The pipeline's evaluate stage calls this.
    The result's ``provenance`` names the checkpoint, its SHA-256 and iteration."""
    from pona_model.generate import generate_pairs
    from pona_model.inference import load_generator
    from pona_model.pair_dataset import PairDataset

    model = load_generator(checkpoint, device)
    keypoints = read_annotations(annotations)
    settings = kwargs.get("settings") or MetricSettings()
    todo = select_pairs(read_pairs(pairs, known_names=keypoints), settings.max_pairs)
    dataset = PairDataset(images, keypoints, todo, image_size=model.image_size)
    generated = Path(generated) if generated else Path(checkpoint).parent / f"test-generated-{model.sha256[:12]}"
    marker = generated / "generator.json"  # existing images are reused only if this checkpoint made them
    if marker.is_file() and json.loads(marker.read_text()).get("sha256") != model.sha256:
        raise EvaluationError(f"{generated} holds images of another checkpoint ({marker}); pass another "
                              "generated= folder or empty this one")
    atomic_write_text(marker, json.dumps({"checkpoint": str(checkpoint), "sha256": model.sha256,
                                          "iteration": model.iteration}, indent=2) + "\n")
    generate_pairs(model, dataset, generated, batch_size=batch_size, num_workers=num_workers)
    out = out if out is not None else generated / "metrics.json"
    provenance = {**(kwargs.pop("provenance", None) or {}), "checkpoint": str(checkpoint),
                  "sha256": model.sha256, "iteration": model.iteration, "generator_size": list(model.image_size)}
    if not kwargs.get("label"):
        kwargs["label"] = f"{Path(checkpoint).parent.name} @ {model.iteration}"
    return evaluate_folder(generated, keypoints, images=images, pairs=pairs, out=out, provenance=provenance,
                           **kwargs)


# ----------------------------------------------------------------------------- the table

def _cell(metric: dict[str, Any] | None, key: str) -> str:
    if metric is None:
        return "-"
    value = metric.get("value")
    if value is None:
        return "skipped"
    digits = {"psnr": 3, "fid": 2, "is": 3, "mask_is": 3}.get(key, 4)
    return f"{value:.{digits}f}"


def format_table(results: Sequence[dict[str, Any]], paper: bool = True) -> str:
    """A plain-text table in the order of the paper's Table I (then PCKh-gt, L1, FID, LPIPS), one row
    per result, the paper's PoNA Market-1501 row first for scale, and the skip reasons below."""
    header = ["method", *[title for _, title in TABLE_COLUMNS]]
    rows = []
    if paper:
        rows.append(["PoNA, paper (Market-1501)",
                     *[f"{PAPER_TABLE_I[k]:g}" if k in PAPER_TABLE_I else "" for k, _ in TABLE_COLUMNS]])
    for r in results:
        rows.append([r.get("label") or "this run", *[_cell(r["metrics"].get(k), k) for k, _ in TABLE_COLUMNS]])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    reasons: dict[str, list[str]] = {}
    for r in results:
        for key, title in TABLE_COLUMNS:
            m = r["metrics"].get(key)
            if m is not None and m.get("value") is None and m.get("skipped"):
                reasons.setdefault(m["skipped"], []).append(title)
    for reason, titles in reasons.items():
        lines.append(f"skipped {', '.join(dict.fromkeys(titles))}: {reason}")
    used = {r["pairs"]["used"] for r in results}
    sizes = {tuple(r["pinned"]["compared_size"]) for r in results}
    lines.append(f"pairs scored: {', '.join(map(str, sorted(used)))}; compared at "
                 f"{', '.join(f'{h} x {w}' for h, w in sorted(sizes))}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    prog = "python -m pona_model.evaluate"
    cfg = parse_config(EvaluateConfig, argv, prog=prog, description=__doc__)
    need = ["annotations"] + (["images", "pairs"] if cfg.baseline or cfg.checkpoint else ["generated"]) + (
        ["out"] if cfg.baseline else [])
    missing = [k for k in need if not getattr(cfg, k)]
    if missing:
        print(f"{prog}: error: set {', '.join(k + '=...' for k in missing)} (see --help)", file=sys.stderr)
        return 2
    common = dict(train_images=cfg.train_images or None, settings=cfg.metrics, fmt=cfg.format, label=cfg.label,
                  grid_pairs=cfg.grid_pairs, sheet_conditions=cfg.sheet_conditions, sheet_poses=cfg.sheet_poses,
                  progress=cfg.progress, provenance={"command": to_dict(cfg)})
    try:
        if cfg.checkpoint:
            result = evaluate_checkpoint(cfg.checkpoint, cfg.images, cfg.annotations, cfg.pairs,
                                         cfg.generated or None, out=cfg.out or None, device=cfg.metrics.device,
                                         **common)
        else:
            out = cfg.out or (Path(cfg.generated) / "metrics.json" if cfg.generated else None)
            result = evaluate_folder(None if cfg.baseline else cfg.generated, cfg.annotations,
                                     images=cfg.images or None, pairs=cfg.pairs or None, out=out,
                                     baseline=cfg.baseline, **common)
    except (EvaluationError, FormatError, CheckpointError, MissingWeightsError, OSError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(format_table([result]))
    for key, path in result.get("files", {}).items():
        if isinstance(path, str) and key != "sheet_layout":
            print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
