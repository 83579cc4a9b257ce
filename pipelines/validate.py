"""Cheap checks of a pipeline config that run before any stage: every one of them would otherwise
fail only after the dataset was rendered or a generator trained (README: bad input is refused
before any stage starts). Each error names the key or file and the fix."""

from __future__ import annotations

from pathlib import Path

from pipelines import methods, plan
from pipelines.config import PipelineConfig, effective_precision
from pona_model.release_spec import is_release
from poseformats.annotations import read_annotations, read_pairs
from reid.model import WEIGHT_POLICIES, released_start
from runtime.device import resolve_device


def _positive(values: dict[str, int]) -> None:
    for key, value in values.items():
        if value < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")


def _file(key: str, value: str) -> Path:
    path = Path(value)
    if not path.exists():
        raise FileNotFoundError(f"{key}={value} does not exist; give the path of an existing file")
    if not path.is_file():
        raise IsADirectoryError(f"{key}={value} is a folder; give the path of a file in it")
    return path


def check_config(cfg: PipelineConfig) -> None:
    """Device and precision available here, sizes positive, seeds non-negative, every configured file
    present and readable; raises ValueError / FileNotFoundError naming the key."""
    _check_methods(cfg)
    resolve_device(cfg.device)  # cuda:7 on a one-GPU machine, or a typo, fails here
    effective_precision(cfg)
    for key, value in {"seed": cfg.seed, "data.synthmarket.seed": cfg.data.synthmarket.seed}.items():
        if value < 0:
            raise ValueError(f"{key} must be a non-negative integer, got {value}")
    _positive({"evaluate_pairs": cfg.evaluate_pairs, "augment.shard_size": cfg.augment.shard_size,
               "augment.batch_size": cfg.augment.batch_size, "dask.workers": cfg.dask.workers})
    if Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise NotADirectoryError(f"out={cfg.out} is a file; give a folder (it is created if absent)")
    for g in methods.GENERATORS.values():  # PoNA's always, another where a configured method uses it
        value = getattr(cfg, g.section).checkpoint
        used = g.section == "generator" or any(methods.TABLE[m].generator == g.name for m in cfg.methods)
        if value and not is_release(value) and used:
            _file(f"{g.section}.checkpoint", value)  # a release (released, released:NAME) is verified by train_generator.check
    _check_reid_start(cfg)
    if cfg.data.dataset == "market1501":
        _check_market_files(cfg)


def _check_reid_start(cfg: PipelineConfig) -> None:
    """A released start is verified (and a start file found) before the first stage, not at the first
    re-ID training after the data and the generator."""
    model = cfg.reid.model
    if released_start(model.weights, model.backbone) is None and model.weights not in WEIGHT_POLICIES:
        _file("reid.model.weights", model.weights)


def _check_methods(cfg: PipelineConfig) -> None:
    """A method that needs what the dataset does not have (the oracle: SynthMarket's renderer)."""
    for method in plan.unavailable(cfg):
        needs = " or ".join(f"dataset={d}" for d in methods.TABLE[method].datasets)
        raise ValueError(f"methods={','.join(cfg.methods)}: {method} works only with {needs}, not "
                         f"dataset={cfg.data.dataset}; drop {method} from methods (or set {needs})")


def _check_market_files(cfg: PipelineConfig) -> None:
    """Annotation and pair files parse (and name plain files) before the data stage uses them."""
    data = cfg.data
    if data.annotations:
        read_annotations(_file("data.annotations", data.annotations))
    if bool(data.test_pairs) != bool(data.test_annotations):
        raise ValueError("data.test_pairs and data.test_annotations go together (generator metrics need both); "
                         "set both or neither")
    if data.test_annotations:
        known = read_annotations(_file("data.test_annotations", data.test_annotations))
        read_pairs(_file("data.test_pairs", data.test_pairs), known_names=known)
