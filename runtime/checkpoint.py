"""Saving and loading the project's checkpoints: atomic writes, ``weights_only`` loads, clear errors.

A checkpoint is a dict of tensors and plain Python values with a ``format`` tag, so a file from
another tool, a truncated download or a checkpoint of another kind is recognised and named rather
than failing deep inside ``load_state_dict``.
"""

from __future__ import annotations

import copy
import hashlib
import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runtime.atomic import atomic_path
from runtime.errors import CheckpointError
from runtime.portable import current_root, is_under, relative, resolve

FORMAT_VERSION = 1

__all__ = ["FORMAT_VERSION", "file_sha256", "load_checkpoint", "rng_state", "save_checkpoint",
           "set_rng_state", "unreadable_reason"]


def unreadable_reason(exc: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one line, without torch's hint to
    retry with ``weights_only=False``: that advice runs whatever code a malicious file carries."""
    text = str(exc).strip()
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
        text = "not a plain tensor file: " + (text.splitlines()[0].strip() if text else "unsupported content")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if "weights_only" not in line and "arbitrary code" not in line]
    return f"{type(exc).__name__}: {kept[0]}" if kept else type(exc).__name__


PORTABLE_KEYS = "portable_paths"  # the dotted config keys a checkpoint stores relative to its own folder


def portable_state(state: dict[str, Any], folder: str | os.PathLike) -> dict[str, Any]:
    """``state`` as a pipeline stage stores it (``runtime.portable``): the config's paths inside the run
    folder relative to the checkpoint's ``folder``, their keys listed under ``PORTABLE_KEYS`` so
    ``load_checkpoint`` makes them absolute again wherever the folder is then; top-level texts that
    name such a path ("checkpoint: /.../a.pt (sha256 ...)") relative too. Unchanged outside a stage."""
    root = current_root()
    if root is None or not isinstance(state.get("config"), dict):
        return state
    moved: list[str] = []

    def walk(tree: dict[str, Any], prefix: str) -> dict[str, Any]:
        out = {}
        for key, value in tree.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict):
                out[key] = walk(value, dotted + ".")
            elif isinstance(value, str) and os.path.isabs(value) and is_under(value, root):
                out[key] = relative(value, folder)
                moved.append(dotted)
            else:
                out[key] = relative(value, folder)
        return out

    texts = {k: relative(v, folder) for k, v in state.items() if isinstance(v, str)}
    return {**state, **texts, "config": walk(state["config"], ""), PORTABLE_KEYS: moved}


def _absolute_paths(state: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The inverse of ``portable_state`` for the folder the checkpoint is read from now."""
    keys = state.get(PORTABLE_KEYS)
    if not keys or not isinstance(state.get("config"), dict):
        return state
    config = copy.deepcopy(state["config"])
    for dotted in keys:
        *parents, last = dotted.split(".")
        node = config
        for name in parents:
            node = node.get(name, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and isinstance(node.get(last), str):
            node[last] = resolve(node[last], folder)
    return {k: v for k, v in state.items() if k != PORTABLE_KEYS} | {"config": config}


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` atomically: an interrupted save leaves the previous checkpoint intact. Inside a
    pipeline stage its config's paths are stored relative to the checkpoint (``portable_state``)."""
    with atomic_path(path) as tmp:
        torch.save(portable_state(state, Path(path).absolute().parent), tmp)


def load_checkpoint(path: str | os.PathLike, expected_format: str | tuple[str, ...],
                    map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and check its format tag (one of
    ``expected_format`` when several kinds are accepted) and version."""
    formats = (expected_format,) if isinstance(expected_format, str) else tuple(expected_format)
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise CheckpointError(
            f"{p} is not a readable checkpoint ({unreadable_reason(exc)}). It may be truncated or corrupted, or come from "
            "another tool: use a checkpoint written by this project's trainer."
        ) from exc
    if not isinstance(state, dict) or state.get("format") not in formats:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{p} is not a {' or '.join(formats)} checkpoint (format tag: {found!r}). Use a checkpoint written "
            "by this project's trainer."
        )
    if state.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{p} has checkpoint version {state.get('version')}, this code reads "
                              f"version {FORMAT_VERSION}")
    return _absolute_paths(state, p.absolute().parent)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Content hash recorded in provenance manifests, so a result names the exact weights used."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG a training run draws from (torch, CUDA, Python, numpy), as data that loads with
    ``weights_only=True``: a resumed run continues the same random streams."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": {"version": int(version), "state": [int(x) for x in internal], "gauss": gauss},
        "numpy": {"kind": str(kind), "keys": [int(x) for x in keys], "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
