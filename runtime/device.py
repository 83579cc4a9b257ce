"""``device=auto`` and friends: one place that turns a config string into a torch device."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch

from runtime.cpu_isa import cpu_flags_say_native_bf16


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


PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16, AMX or Arm BF16): there bf16
    autocast is 2-4x faster than fp32; elsewhere oneDNN emulates bf16 and it is slower (a re-ID step
    at 0.65x fp32's speed on an AVX512 Xeon without AVX512-BF16; README, "Precision and layout"), so
    ``auto`` stays fp32. The CPU's flags decide; oneDNN's own check, which says yes wherever it can
    emulate, is used only where the flags cannot be read."""
    if not torch.backends.mkldnn.is_available():
        return False
    native = cpu_flags_say_native_bf16()
    if native is not None:
        return native
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``precision=auto|fp32|bf16`` -> the autocast dtype (float32 means no autocast). ``auto`` is
    bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere (Apple MPS included)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        if device.type == "mps":
            raise ValueError("precision=bf16 is not supported on MPS here (use precision=auto or fp32)")
        return torch.bfloat16
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()):
        return torch.bfloat16
    return torch.float32


def precision_name(dtype: torch.dtype) -> str:
    """The name results and checkpoints record: ``fp32`` or ``bf16``."""
    return "bf16" if dtype == torch.bfloat16 else "fp32"


def autocast(device: torch.device, dtype: torch.dtype) -> AbstractContextManager:
    """Mixed precision for the forward pass: matmuls and convolutions in ``dtype``, while autocast keeps
    losses, norms' statistics and reductions in fp32; the optimiser state stays fp32 because the
    parameters do. ``float32`` is a no-op context."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def loader_context(num_workers: int) -> Any:
    """The start method of data-loader worker processes: ``fork`` where the platform has it (Linux),
    whatever the process's default. A dask worker process defaults to ``spawn``, and a spawned loader
    imports torch again for every epoch's loader (measured 5.3 s of CPU and a stall of up to 8 s
    before the epoch's first batch); a forked one starts at once. ``None`` (the default) elsewhere and
    for ``num_workers=0``, where the DataLoader takes no context."""
    import multiprocessing

    if num_workers <= 0 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")

