"""Plan and write a SynthMarket dataset: identities, splits, Market names, images, CSVs, manifest.

Everything random is keyed by numpy SeedSequences built from (seed, what, identity, camera, frame),
never by the order in which work happens, so the bytes do not depend on the number of workers.
``synthmarket.json`` is written last: its presence means the root is complete. Files are only ever
written into a new or empty folder, or one that this generator marked as its own (``PARTIAL``) and
was interrupted in; any other folder is refused and nothing in it is touched.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from poseformats.annotations import build_pairs, write_annotations, write_pairs
from poseformats.keypoints import MISSING, N_JOINTS, has_torso
from poseformats.market_names import DISTRACTOR_ID, JUNK_ID, N_CAMERAS, NAME_PATTERN
from runtime.atomic import atomic_path, atomic_write_text
from runtime.config import to_dict
from synthmarket.appearance import (
    Appearance,
    jacket_pattern_lookalikes,
    lookalike_groups,
    mutate,
    sample_appearance,
    with_jacket,
)
from synthmarket.camera import Camera, apply_camera, background_crop, make_cameras
from synthmarket.config import SynthMarketConfig
from synthmarket.render import Rendered, Shot, render
from synthmarket.shots import Track, sample_shot, sample_track
from synthmarket.skeleton import sample_body

GENERATOR_VERSION = 2  # bump whenever the same settings would draw different bytes
SPLIT_DIRS: dict[str, str] = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
MARKET_PATTERN = NAME_PATTERN.pattern  # the names SynthMarket writes parse as Market-1501's
# SeedSequence tags: one per kind of random decision.
(_PLAN, _APPEARANCE, _MUTATION, _CAMERAS, _TRACK, _IMAGE, _NAMES, _EXTRA, _JACKET, _SCENE,
 _JACKET_PATTERN) = range(101, 112)
_SPLIT_CODE = {"train": 1, "query": 2, "gallery": 3}
_ROLE_CODE = {"person": 1, "distractor": 2, "junk": 3}
DISTRACTOR_BASE = 20000  # appearance keys of distractor people (never appear in a file name)
JUNK_BASE = 30000


@dataclass(frozen=True)
class Job:
    """One image to render: where it goes, who is in it, and which frame of which track it is."""

    split: str  # train / query / gallery
    role: str  # person / distractor / junk
    label: int  # the identity written in the name: the person's id, 0 (distractor) or -1 (junk)
    source: int  # whose appearance and track: an identity, or a distractor / junk key
    camera: int  # 1..6
    index: int  # frame within the (source, camera) track
    name: str = ""
    sequence: int = 0
    frame: int = 0


@dataclass
class Plan:
    """The whole dataset before any pixel is drawn."""

    train_ids: list[int]
    test_ids: list[int]
    appearances: dict[int, Appearance]
    groups: dict[int, int]  # identity -> look-alike group number
    jobs: list[Job]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


# ----------------------------------------------------------------------------- planning

def _identities(cfg: SynthMarketConfig) -> tuple[list[int], list[int]]:
    """Market-like sparse 4-digit identity numbers, train and test interleaved."""
    n = cfg.n_train_ids + cfg.n_test_ids
    pool = min(9999, max(1501, 2 * n))
    rng = _rng(cfg.seed, _PLAN)
    ids = rng.choice(np.arange(1, pool + 1), size=n, replace=False)
    order = rng.permutation(n)
    train = sorted(int(i) for i in ids[order[: cfg.n_train_ids]])
    test = sorted(int(i) for i in ids[order[cfg.n_train_ids:]])
    return train, test


def _appearances(cfg: SynthMarketConfig, ids: list[int], split_code: int) -> tuple[dict[int, Appearance], dict[int, int]]:
    """Look-alike groups within one split: the first member wears the base outfit, the others
    change ``lookalike_changes`` attributes of it."""
    groups = lookalike_groups(ids, cfg.lookalike_group_size, _rng(cfg.seed, _PLAN, split_code))
    out: dict[int, Appearance] = {}
    group_of: dict[int, int] = {}
    for g, members in enumerate(groups):
        base = sample_appearance(_rng(cfg.seed, _APPEARANCE, members[0]), cfg.palette_size, cfg.shade_jitter)
        if cfg.lookalike_cue == "jacket_pattern":  # one jacket for the group, a layout each
            bodies = [base.body] + [sample_body(_rng(cfg.seed, _MUTATION, m)) for m in members[1:]]
            looks = jacket_pattern_lookalikes(_dress(cfg, members[0], base), bodies,
                                              _rng(cfg.seed, _JACKET_PATTERN, members[0]), cfg.jacket_pattern_scale,
                                              cfg.palette_size, cfg.shade_jitter)
            out.update(zip(members, looks, strict=True))
        else:
            for k, identity in enumerate(members):
                out[identity] = _dress(cfg, identity, base if k == 0 else mutate(
                    base, _rng(cfg.seed, _MUTATION, identity), cfg.lookalike_changes, cfg.palette_size,
                    cfg.shade_jitter))
        group_of.update({identity: split_code * 100000 + g for identity in members})
    return out, group_of


def _dress(cfg: SynthMarketConfig, key: int, appearance: Appearance) -> Appearance:
    """The identity's own view-dependent layer (an open jacket, ``jacket_prob``), drawn per identity."""
    return with_jacket(appearance, _rng(cfg.seed, _JACKET, key), cfg.jacket_prob, cfg.palette_size, cfg.shade_jitter)


def _cameras_of(cfg: SynthMarketConfig, identity: int) -> dict[int, int]:
    """{camera: images} for one identity."""
    rng = _rng(cfg.seed, _CAMERAS, identity)
    k = int(rng.integers(cfg.min_cameras, cfg.max_cameras + 1))
    cams = sorted(int(c) + 1 for c in rng.choice(N_CAMERAS, size=k, replace=False))
    return {c: int(rng.integers(1, cfg.max_images_per_camera + 1)) for c in cams}


def make_plan(cfg: SynthMarketConfig) -> Plan:
    """Identities, their appearances and cameras, every image job, and Market names."""
    train_ids, test_ids = _identities(cfg)
    appearances, groups = _appearances(cfg, train_ids, 1)
    test_app, test_groups = _appearances(cfg, test_ids, 2)
    appearances.update(test_app)
    groups.update(test_groups)
    jobs: list[Job] = []
    for identity in train_ids:
        for cam, count in _cameras_of(cfg, identity).items():
            jobs += [Job("train", "person", identity, identity, cam, i) for i in range(count)]
    for identity in test_ids:
        for cam, count in _cameras_of(cfg, identity).items():
            jobs += [Job("gallery", "person", identity, identity, cam, i) for i in range(count)]
            jobs.append(Job("query", "person", identity, identity, cam, count))  # one query per camera
    extra = _rng(cfg.seed, _EXTRA)
    for k in range(cfg.n_distractors):
        key = DISTRACTOR_BASE + k
        if extra.random() < 0.5:  # a look-alike of a test identity: a hard wrong match
            twin = test_ids[int(extra.integers(len(test_ids)))]
            appearances[key] = mutate(appearances[twin], _rng(cfg.seed, _MUTATION, key), cfg.lookalike_changes,
                                      cfg.palette_size, cfg.shade_jitter)
            groups[key] = groups[twin]
        else:
            appearances[key] = sample_appearance(_rng(cfg.seed, _APPEARANCE, key), cfg.palette_size, cfg.shade_jitter)
            groups[key] = -1
        appearances[key] = _dress(cfg, key, appearances[key])
        jobs.append(Job("gallery", "distractor", DISTRACTOR_ID, key, int(extra.integers(1, N_CAMERAS + 1)), 0))
    for k in range(cfg.n_junk):
        source = test_ids[int(extra.integers(len(test_ids)))]  # fragments of test people, or background
        jobs.append(Job("gallery", "junk", JUNK_ID, JUNK_BASE + k if extra.random() < 0.5 else source,
                        int(extra.integers(1, N_CAMERAS + 1)), 1000 + k))
    return Plan(train_ids, test_ids, appearances, groups, _name_jobs(cfg, jobs))


def _name_jobs(cfg: SynthMarketConfig, jobs: list[Job]) -> list[Job]:
    """Market names: per camera the tracks are laid out in time; frames of a track are close
    together, tracks are apart, and a camera's video is cut into sequences s1..s6."""
    named: list[Job] = []
    for cam in range(1, N_CAMERAS + 1):
        rng = _rng(cfg.seed, _NAMES, cam)
        tracks: dict[tuple[int, str], list[Job]] = {}
        for job in jobs:
            if job.camera == cam:
                key = (job.source, "x" if job.role == "person" else f"{job.role}{job.index}")
                tracks.setdefault(key, []).append(job)
        keys = sorted(tracks)
        order = rng.permutation(len(keys))
        per_sequence = max(1, -(-len(keys) // 6))
        sequence, frame = 1, int(rng.integers(20, 400))
        for rank, t in enumerate(order):
            if rank and rank % per_sequence == 0:
                sequence, frame = sequence + 1, int(rng.integers(20, 400))
            frame += int(rng.integers(30, 600))
            for job in sorted(tracks[keys[t]], key=lambda j: (j.index, j.split)):
                frame += int(rng.integers(4, 30))
                box = 1 if rng.random() < 0.8 else int(rng.integers(2, 5))
                label = f"{job.label:04d}" if job.label >= 0 else "-1"
                name = f"{label}_c{cam}s{sequence}_{frame:06d}_{box:02d}.jpg"
                named.append(dataclasses.replace(job, name=name, sequence=sequence, frame=frame))
    split_order = {"train": 0, "query": 1, "gallery": 2}
    return sorted(named, key=lambda j: (split_order[j.split], j.name))


# ----------------------------------------------------------------------------- rendering

@lru_cache(maxsize=4)
def _cameras(seed: int, height: int, width: int, strength: float) -> tuple[Camera, ...]:
    return tuple(make_cameras(seed, height, width, strength))


def dataset_cameras(cfg: SynthMarketConfig) -> tuple[Camera, ...]:
    """The six cameras of a dataset (made once per process)."""
    return _cameras(cfg.seed, cfg.height, cfg.width, cfg.camera_strength)


def track_of(seed: int, identity: int, camera: int) -> Track:
    """The walk in which ``camera`` sees ``identity`` (query and gallery frames share it)."""
    return sample_track(_rng(seed, _TRACK, identity, camera))


_WORKER: dict = {}


def _init_worker(content: dict, root: str, appearances: dict[int, Appearance]) -> None:
    _WORKER.update(content=content, root=root, appearances=appearances)


def _junk_shot(track: Track, rng: np.random.Generator, cfg: dict) -> Shot:
    """A body fragment: the detector boxed a leg, a shoulder or a passer-by's edge."""
    shot = sample_shot(track, 0, rng, yaw_jitter=cfg["yaw_jitter"])
    kind = int(rng.integers(3))
    if kind == 0:  # legs only
        return dataclasses.replace(shot, stature=shot.stature * rng.uniform(1.8, 2.4), feet_y=1.0, misaligned="legs")
    if kind == 1:  # upper body, far too close
        return dataclasses.replace(shot, stature=shot.stature * rng.uniform(1.8, 2.4),
                                   feet_y=rng.uniform(1.6, 2.0), misaligned="torso")
    return dataclasses.replace(shot, centre_x=0.5 + rng.choice([-1, 1]) * rng.uniform(0.55, 0.7), misaligned="edge")


def job_shot(job: Job, content: dict) -> tuple[Shot | None, np.random.Generator]:
    """What ``job`` shows (None for a box of background only) and the job's own random stream, left
    just after the shot's draws: ``render_shot`` continues the same stream, so a job's image can be
    re-rendered under another camera (``synthmarket.oracle``) with everything else unchanged."""
    seed = content["seed"]
    rng = _rng(seed, _IMAGE, _SPLIT_CODE[job.split], _ROLE_CODE[job.role], job.source, job.camera, job.index)
    if job.source >= JUNK_BASE:
        return None, rng
    track = track_of(seed, job.source, job.camera)
    if job.role == "junk":
        return _junk_shot(track, rng, content), rng
    misalign = content["misalign_prob"] if job.split != "query" else 0.0
    if job.role == "distractor" and rng.random() < 0.3:
        misalign = 1.0  # Market's distractors are largely poor detections
    shot = sample_shot(track, job.index, rng, occlusion_prob=content["occlusion_prob"], misalign_prob=misalign,
                       turn_prob=content["turn_prob"], yaw_jitter=content["yaw_jitter"])
    return shot, rng


def scene_of(content: dict, source: int, camera: int) -> int:
    """The camera whose scene is behind ``source``'s walk in ``camera``: that camera's own, or with
    ``shared_scenes`` one of the six drawn for the walk (so all its frames share it)."""
    if not content.get("shared_scenes", False):
        return camera
    return int(_rng(content["seed"], _SCENE, source, camera).integers(1, N_CAMERAS + 1))


def walk_scene(content: dict, cameras: tuple[Camera, ...], source: int, camera: int) -> Camera | None:
    """The camera whose scene ``render_shot`` puts behind ``source``'s walk in ``camera``; None without
    ``shared_scenes`` (the camera's own, drawn where the renderer always draws it)."""
    return cameras[scene_of(content, source, camera) - 1] if content.get("shared_scenes", False) else None


def render_shot(appearance: Appearance, camera: Camera, shot: Shot, rng: np.random.Generator,
                content: dict, scene: Camera | None = None) -> Rendered:
    """``shot`` of a person seen by ``camera``, at the dataset's size; ``rng`` is the rest of the
    stream ``job_shot`` returned (occluder shape, fabric folds, background crop, sensor noise).
    ``scene``: the camera whose scene is the background (``shared_scenes``; None: ``camera``'s, drawn
    where the renderer always draws it, so the default's bytes never change)."""
    background = None
    if scene is not None:
        background = background_crop(scene, rng, content["height"], content["width"], centre=shot.bg_centre)
    return render(appearance, camera, shot, rng, height=content["height"], width=content["width"],
                  supersample=content["supersample"], background=background)


def render_job(job: Job, content: dict, appearances: dict[int, Appearance]) -> tuple[np.ndarray, np.ndarray, dict]:
    """The image (uint8), keypoints and manifest facts of one job, from its own seeds alone."""
    cameras = _cameras(content["seed"], content["height"], content["width"], content["camera_strength"])
    camera = cameras[job.camera - 1]
    shot, rng = job_shot(job, content)
    facts = {"view": "", "pose": "", "yaw_deg": np.nan, "occluder": "none", "misaligned": "none"}
    if shot is None:  # a box of background only
        image = apply_camera(background_crop(camera, rng, content["height"], content["width"]), camera, rng)
        return image, np.full((N_JOINTS, 2), MISSING, dtype=np.int32), {**facts, "misaligned": "background"}
    out = render_shot(appearances[job.source], camera, shot, rng, content,
                      walk_scene(content, cameras, job.source, job.camera))
    facts.update(view=shot.view, pose=shot.pose.kind, yaw_deg=round(float(np.degrees(shot.yaw)), 1),
                 occluder=shot.occluder, misaligned=shot.misaligned)
    return out.image, out.keypoints, facts


def _work(job: Job) -> tuple[Job, np.ndarray, dict]:
    """Worker entry: render one job and write its JPEG atomically."""
    content, root, appearances = _WORKER["content"], _WORKER["root"], _WORKER["appearances"]
    image, keypoints, facts = render_job(job, content, appearances)
    quality = _cameras(content["seed"], content["height"], content["width"],
                       content["camera_strength"])[job.camera - 1].jpeg_quality
    path = Path(root) / SPLIT_DIRS[job.split] / job.name
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality)
    return job, keypoints, facts


def _n_workers(requested: int) -> int:
    if requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _render_all(cfg: SynthMarketConfig, plan: Plan, root: Path) -> list[tuple[Job, np.ndarray, dict]]:
    content = cfg.content()
    workers = min(_n_workers(cfg.workers), max(1, len(plan.jobs) // 16))
    bar = tqdm(total=len(plan.jobs), desc="SynthMarket", unit="img", disable=not cfg.progress)
    results = []
    try:
        if workers == 1:
            _init_worker(content, str(root), plan.appearances)
            for job in plan.jobs:
                results.append(_work(job))
                bar.update()
        else:
            with cf.ProcessPoolExecutor(workers, initializer=_init_worker,
                                        initargs=(content, str(root), plan.appearances)) as pool:
                for result in pool.map(_work, plan.jobs, chunksize=16):
                    results.append(result)
                    bar.update()
    finally:
        bar.close()
    return results


# ----------------------------------------------------------------------------- writing

class ConfigMismatchError(ValueError):
    """The output root holds a finished SynthMarket made with other settings."""


def _check_existing(root: Path, cfg: SynthMarketConfig) -> pd.DataFrame | None:
    """The manifest of a finished root made with the same settings; None when there is none yet."""
    marker = root / "synthmarket.json"
    if not marker.is_file():
        return None
    info = json.loads(marker.read_text(encoding="utf-8"))
    theirs = {k: v for k, v in info.get("config", {}).items() if k in cfg.content()}
    mine = cfg.content()
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if info.get("version") != GENERATOR_VERSION:
        differ.append(f"generator version {info.get('version')} != {GENERATOR_VERSION}")
    if differ:
        raise ConfigMismatchError(
            f"{root} already holds a SynthMarket dataset made with other settings ({', '.join(differ)}); "
            f"use another out= or delete {root}")
    return pd.read_csv(root / "manifest.csv", dtype={"name": str, "file": str})


PARTIAL = ".synthmarket-partial"  # written first, removed after synthmarket.json: "this folder is mine"


class OutputFolderError(ValueError):
    """``out`` is a file, or a non-empty folder this generator did not make: refused, never emptied."""


def _claim(root: Path) -> None:
    """Make ``root`` ours before writing anything: new or empty folders are marked with ``PARTIAL``;
    a folder already marked (an interrupted run) is resumed; anything else is refused untouched,
    because cleaning it up could delete a user's real dataset."""
    if root.exists() and not root.is_dir():
        raise OutputFolderError(f"out={root} is a file, not a folder; choose a new or empty folder")
    if root.is_dir() and not (root / PARTIAL).is_file() and any(root.iterdir()):
        raise OutputFolderError(
            f"out={root} is not empty and is not a SynthMarket folder (no synthmarket.json, no {PARTIAL}); "
            "nothing was changed: choose a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    (root / PARTIAL).touch()


def _remove_strays(root: Path, plan: Plan) -> None:
    """Images an interrupted run with other settings left behind, so the CSVs cover exactly the files.
    Only called on a folder ``_claim`` accepted, i.e. one this generator made."""
    wanted = {(SPLIT_DIRS[j.split], j.name) for j in plan.jobs}
    for folder in SPLIT_DIRS.values():
        directory = root / folder
        if directory.is_dir():
            for path in directory.glob("*.jpg"):
                if (folder, path.name) not in wanted:
                    path.unlink()


def generate_synthmarket(out: str | os.PathLike | None = None, config: SynthMarketConfig | None = None) -> pd.DataFrame:
    """Write a complete SynthMarket dataset under ``out`` (default ``config.out``) and return its
    manifest. A finished root made with the same settings is returned as it is; one made with other
    settings raises ConfigMismatchError; a file or a non-empty folder it did not make raises
    OutputFolderError (nothing in it is deleted)."""
    cfg = config or SynthMarketConfig()
    root = Path(out if out is not None else cfg.out)
    existing = _check_existing(root, cfg)
    if existing is not None:
        return existing
    plan = make_plan(cfg)
    _claim(root)
    _remove_strays(root, plan)
    results = _render_all(cfg, plan, root)

    rows, train_kp, test_kp = [], {}, {}
    for job, kp, facts in results:
        if job.split == "train":
            train_kp[job.name] = kp
        elif job.split == "gallery":
            test_kp[job.name] = kp
        a = plan.appearances[job.source] if job.source < JUNK_BASE else None
        rows.append({
            "split": job.split, "file": f"{SPLIT_DIRS[job.split]}/{job.name}", "name": job.name,
            "identity": job.label, "camera": job.camera, "sequence": job.sequence, "frame": job.frame,
            "role": job.role, "source": job.source, "group": plan.groups.get(job.source, -1),
            **facts, "n_visible": int((kp[:, 0] != MISSING).sum()), "has_torso": has_torso(kp),
            "appearance": a.summary() if a is not None else "",
        })
    manifest = pd.DataFrame(rows)
    write_annotations(root / "market-annotation-train.csv", dict(sorted(train_kp.items())))
    write_annotations(root / "market-annotation-test.csv", dict(sorted(test_kp.items())))
    write_pairs(root / "market-pairs-train.csv",
                build_pairs(train_kp, n=cfg.train_pairs or None, seed=cfg.seed))
    write_pairs(root / "market-pairs-test.csv", build_pairs(test_kp, n=cfg.test_pairs, seed=cfg.seed))
    with atomic_path(root / "manifest.csv") as tmp:
        manifest.to_csv(tmp, index=False)
    counts = {
        "train_images": int((manifest.split == "train").sum()),
        "query_images": int((manifest.split == "query").sum()),
        "gallery_images": int((manifest.split == "gallery").sum()),
        "distractors": int((manifest.role == "distractor").sum()),
        "junk": int((manifest.role == "junk").sum()),
        "train_ids": len(plan.train_ids), "test_ids": len(plan.test_ids),
    }
    cameras = dataset_cameras(cfg)
    info = {
        "generator": "synthmarket", "version": GENERATOR_VERSION, "config": to_dict(cfg),
        "counts": counts, "cameras": [c.describe() for c in cameras],
    }
    atomic_write_text(root / "synthmarket.json", json.dumps(info, indent=2) + "\n")
    (root / PARTIAL).unlink()
    return manifest
