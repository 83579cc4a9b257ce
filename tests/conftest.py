"""Shared fixtures: tiny generated pair data, so generator tests need no downloaded dataset."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from poseformats.annotations import build_pairs, write_annotations, write_pairs

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench(name: str) -> ModuleType:
    """The script ``bench/<name>.py`` as a module (bench/ is no package): bench/ goes on sys.path, as when
    the script runs, for the neighbours it imports (bench_common), and the module is registered under its
    name, for the dataclasses that look their module up."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", autouse=True)
def _one_thread_for_module_fixtures():
    """One thread before any module-scoped fixture trains (they run before the per-test fixture below), so
    what they compute does not depend on which test of the session happened to run first."""
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic_torch(monkeypatch, tmp_path_factory):
    """One thread (stable sums), and an empty torch hub cache so no user's VGG file changes a test."""
    torch.set_num_threads(1)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))


def _person_keypoints(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A rough upright 18-joint pose inside a (height, width) box, (y, x) ints."""
    cy, cx = height / 2, width / 2
    base = np.array([
        [-0.40, 0.00], [-0.28, 0.00], [-0.28, -0.18], [-0.10, -0.22], [0.05, -0.24], [-0.28, 0.18],
        [-0.10, 0.22], [0.05, 0.24], [0.05, -0.10], [0.25, -0.11], [0.43, -0.12], [0.05, 0.10],
        [0.25, 0.11], [0.43, 0.12], [-0.42, 0.05], [-0.42, -0.05], [-0.41, 0.10], [-0.41, -0.10],
    ])
    jitter = rng.normal(0, 0.02, base.shape)
    yx = (base + jitter) * np.array([height, width * 2.0]) + np.array([cy, cx])
    yx = np.clip(np.round(yx), 0, [height - 1, width - 1]).astype(np.int32)
    return yx


def make_pair_data(root: Path, n_ids: int = 3, per_id: int = 3, size: tuple[int, int] = (32, 16),
                   seed: int = 0) -> Path:
    """Images of ``n_ids`` identities (a colour each, noise) in Market naming, with PATN annotation
    and pair CSVs in the layout the trainer's data config expects."""
    rng = np.random.default_rng(seed)
    images = root / "bounding_box_train"
    images.mkdir(parents=True, exist_ok=True)
    keypoints = {}
    for pid in range(1, n_ids + 1):
        colour = rng.integers(0, 256, 3)
        for k in range(per_id):
            name = f"{pid:04d}_c{k % 6 + 1}s1_{k:06d}_00.jpg"
            pixels = np.clip(colour + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(images / name, quality=95)
            keypoints[name] = _person_keypoints(rng, *size)
    write_annotations(root / "market-annotation-train.csv", keypoints)
    write_pairs(root / "market-pairs-train.csv", build_pairs(keypoints))
    return root


def tiny_synthmarket(root: Path, n_train_ids: int) -> Path:
    """A SynthMarket with ``n_train_ids`` training people and nothing else worth rendering (one test
    person, no distractors or junk, 64 x 32, no supersampling): re-ID training tests in seconds."""
    from synthmarket import SynthMarketConfig, generate_synthmarket

    generate_synthmarket(root, SynthMarketConfig(
        out=str(root), seed=0, n_train_ids=n_train_ids, n_test_ids=1, n_distractors=0, n_junk=0, height=64,
        width=32, supersample=1, workers=1, progress=False, test_pairs=1))
    return root


@pytest.fixture
def pair_data(tmp_path: Path) -> Path:
    return make_pair_data(tmp_path / "data")


# A tiny but complete training config: 1 block, ngf 8, 32 x 16, batch 2, 8 iterations in all.
TINY_TRAIN = [
    "generator.ngf=8", "generator.n_blocks=1", "generator.image_size=[32,16]", "generator.norm=batch",
    "discriminator.ndf=8", "discriminator.n_res_blocks=1", "schedule.batch_size=2", "schedule.pool_size=2",
    "schedule.pairs_per_epoch=8", "schedule.n_epochs=1", "schedule.n_epochs_decay=1", "num_workers=0",
    "loss.vgg_missing=disable", "checkpoint_every=100", "sample_every=4", "log_every=1", "sample_count=2",
]


@pytest.fixture
def trained(pair_data, tmp_path):
    """A checkpoint of the tiny config after 2 iterations on ``pair_data``."""
    from pona_model.train_config import load_train_config
    from pona_model.trainer import Trainer
    from runtime.training import CHECKPOINT_NAME

    out = tmp_path / "run"
    Trainer(load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={out}")).fit(max_iterations=2)
    return out / CHECKPOINT_NAME
