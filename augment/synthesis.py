"""Re-synthesise the missing training images with a trained PoNA generator (paper Section IV-D,
step 2): for each missing image, its condition (a kept image of the same identity) and its own pose
as target, written in Market layout under the missing image's file name and stored size, so the
identities, counts and poses of the original training set are kept.

Work is split into shards that run on the scheduler of ``augment.scheduler``; each worker process
loads the generator once. Images are written atomically and existing ones are kept, so an
interrupted synthesis resumes. Target poses the generator cannot use are handled by a named policy:
a pose is usable when it has both shoulders and both hips, the rule the training pairs follow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from augment.scheduler import dask_client, map_tasks, worker_device
from pona_model.inference import LoadedGenerator, load_generator
from poseformats.keypoints import has_torso
from runtime.atomic import atomic_path

log = logging.getLogger(__name__)

UNUSABLE_POLICIES = ("skip", "generate", "copy_condition")
JPEG_QUALITY = 95

_LOADED: dict[tuple[str, str, str], LoadedGenerator] = {}  # per worker process: the generator, loaded once


def _generator(checkpoint: str, device: str, precision: str) -> LoadedGenerator:
    key = (checkpoint, device, precision)
    if key not in _LOADED:
        _LOADED[key] = load_generator(checkpoint, device, precision=precision)
    return _LOADED[key]


@dataclass(frozen=True)
class Shard:
    """One unit of work: rows with names, keypoints and sizes; plain data, so it pickles to workers."""

    checkpoint: str
    device: str
    images_dir: str
    out_dir: str
    rows: tuple[dict, ...]
    batch_size: int
    precision: str = "auto"


def _save_jpeg(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=JPEG_QUALITY)


def _load_conditions(images_dir: Path, batch: list[dict]) -> list[np.ndarray]:
    conditions = []
    for r in batch:
        with Image.open(images_dir / r["condition"]) as img:
            conditions.append(np.asarray(img.convert("RGB")))
    return conditions


def synthesize_shard(shard: Shard) -> int:
    """Generate the shard's images that are not on disk yet; returns how many it wrote.

    JPEG decoding of the next batch and encoding of the last one run on I/O threads while the
    generator works (PIL releases the GIL), so the shard costs little more than the forward passes
    (``bench/synthesis_overhead.py``)."""
    out = Path(shard.out_dir)
    todo = [r for r in shard.rows if not (out / r["name"]).exists()]
    if not todo:
        return 0
    model = _generator(shard.checkpoint, worker_device(shard.device), shard.precision)
    batches = [todo[i : i + shard.batch_size] for i in range(0, len(todo), shard.batch_size)]
    images_dir = Path(shard.images_dir)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="synthesis-io") as io:
        loading = io.submit(_load_conditions, images_dir, batches[0])
        writes = []
        for k, batch in enumerate(batches):
            conditions = loading.result()
            if k + 1 < len(batches):
                loading = io.submit(_load_conditions, images_dir, batches[k + 1])
            images = model.generate_images(conditions, [np.asarray(r["kp_condition"]) for r in batch],
                                           [np.asarray(r["kp_target"]) for r in batch],
                                           target_sizes=[(r["height"], r["width"]) for r in batch])
            writes += [io.submit(_save_jpeg, out / r["name"], image) for r, image in zip(batch, images)]
        for w in writes:
            w.result()  # re-raises a failed write
    return len(todo)


def plan_synthesis(plan: pd.DataFrame, keypoints: Mapping[str, np.ndarray], images_dir: str | Path,
                   unusable_pose: str = "skip") -> pd.DataFrame:
    """Add ``action`` (generate / copy_condition / skip) and the target's stored size to each row of
    ``plan`` (missing images with a ``condition`` column)."""
    if unusable_pose not in UNUSABLE_POLICIES:
        raise ValueError(f"unknown unusable_pose policy {unusable_pose!r}; choose one of {', '.join(UNUSABLE_POLICIES)}")
    no_condition_pose = sorted(set(plan["condition"]) - set(keypoints))
    if no_condition_pose:
        raise ValueError(f"{len(no_condition_pose)} condition images have no keypoints in the annotation file "
                         f"(e.g. {no_condition_pose[:3]}); annotate the training images first "
                         "(python -m poseformats.estimate)")
    actions, heights, widths = [], [], []
    for row in plan.itertuples(index=False):
        kp = keypoints.get(row.name)
        usable = kp is not None and has_torso(np.asarray(kp))
        actions.append("generate" if usable else unusable_pose)
        with Image.open(Path(images_dir) / row.name) as img:  # header only: the size to write back
            widths.append(img.width)
            heights.append(img.height)
    return plan.assign(action=actions, height=heights, width=widths)


def synthesize(plan: pd.DataFrame, keypoints: Mapping[str, np.ndarray], *, checkpoint: str | Path,
               images_dir: str | Path, out_dir: str | Path, device: str = "auto", scheduler: str = "inprocess",
               workers: int = 2, shard_size: int = 256, batch_size: int = 32, seed: int = 0,
               checkpoint_sha256: str | None = None, precision: str = "auto") -> pd.DataFrame:
    """Generate (or copy / skip, per ``action`` from ``plan_synthesis``) every planned row into
    ``out_dir``; returns the provenance manifest, one row per planned missing image. ``precision``
    (auto|fp32|bf16) is the generator's autocast dtype."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images_dir = Path(images_dir)
    todo = plan[plan["action"] == "generate"]
    rows = tuple({"name": r.name, "condition": r.condition, "height": int(r.height), "width": int(r.width),
                  "kp_condition": np.asarray(keypoints[r.condition]).tolist(),
                  "kp_target": np.asarray(keypoints[r.name]).tolist()} for r in todo.itertuples(index=False))
    shards = [Shard(str(checkpoint), device, str(images_dir), str(out), rows[i : i + shard_size], batch_size,
                    precision)
              for i in range(0, len(rows), shard_size)]
    if shards:
        with dask_client(scheduler, workers) as client:
            written = sum(map_tasks(client, synthesize_shard, shards, desc="synthesising"))
        log.info("generated %d images (%d already present) into %s", written, len(rows) - written, out)
    _copy_conditions(plan, images_dir, out)
    if checkpoint_sha256 is None:
        from runtime.checkpoint import file_sha256
        checkpoint_sha256 = file_sha256(checkpoint)
    return _manifest(plan, images_dir, out, str(checkpoint), checkpoint_sha256, seed)


def copy_control(plan: pd.DataFrame, *, images_dir: str | Path, out_dir: str | Path, seed: int = 0) -> pd.DataFrame:
    """The control for ``synthesize``: every row it would generate gets its condition image copied
    instead (rows it skips are skipped too), so the training set has the same names, identities and
    counts as the PoNA-augmented one but no new appearance or pose. Training on it separates what the
    generator adds from what merely repeating kept images (and training more steps per epoch) adds."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan.assign(action=plan["action"].replace({"generate": "copy_condition"}))
    _copy_conditions(plan, Path(images_dir), out)
    log.info("copied %d condition images into %s (copy control)", int((plan["action"] == "copy_condition").sum()), out)
    return _manifest(plan, Path(images_dir), out, "", "", seed)


def _copy_conditions(plan: pd.DataFrame, images_dir: Path, out: Path) -> None:
    for r in plan[plan["action"] == "copy_condition"].itertuples(index=False):
        if not (out / r.name).exists():
            with atomic_path(out / r.name) as tmp:
                tmp.write_bytes((images_dir / r.condition).read_bytes())


def _manifest(plan: pd.DataFrame, images_dir: Path, out: Path, checkpoint: str, checkpoint_sha256: str,
              seed: int) -> pd.DataFrame:
    status = plan["action"].map({"generate": "generated", "copy_condition": "copied_condition", "skip": "skipped"})
    return pd.DataFrame({
        "name": plan["name"], "identity": plan["identity"], "camera": plan["camera"],
        "path": [str(out / n) if s != "skipped" else "" for n, s in zip(plan["name"], status)],
        "condition": plan["condition"], "condition_path": [str(images_dir / c) for c in plan["condition"]],
        "target": plan["name"], "condition_policy": plan.get("condition_policy", "random"),
        "status": status, "checkpoint": checkpoint, "checkpoint_sha256": checkpoint_sha256, "seed": seed,
    })
