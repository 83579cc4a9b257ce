"""``device=auto`` and friends: one place that turns a config string into a torch device."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else Apple MPS, else the CPU; an explicit device that is not
    available is an error naming it, never a silent fall-back to another device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device={name!r} is not a device name (use auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={name!r} but CUDA is not available on this machine (use device=auto or cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device={name!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={name!r} but MPS is not available on this machine")
    return device


@contextmanager
def torch_threads(n: int = 0) -> Iterator[None]:
    """Use ``n`` CPU threads inside the block (0: leave the count as it is) and restore the count on
    the way out, whatever the block set: the pipeline runs stages in one process, and a re-ID stage's
    one thread must not become the next generator stage's setting. Also a decorator: ``@torch_threads()``."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
