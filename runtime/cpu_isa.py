"""Keep oneDNN off the CPU's AMX bf16 kernels unless asked: on an Intel Xeon with AMX (torch 2.14.1,
oneDNN 3.12) the re-ID ResNet-50 trained from random initialisation in bf16 autocast reached a NaN
loss within 23 optimiser steps in 3 of 3 runs, while the same runs capped at AVX512-BF16 (and in
fp32) trained normally (README, "AMX is kept off by default", with the command that reproduces it). The cap keeps bf16's speed-up
from AVX512-BF16; set ``PONA_ALLOW_AMX=1`` (or ``ONEDNN_MAX_CPU_ISA`` yourself) to decide otherwise.

oneDNN reads ``ONEDNN_MAX_CPU_ISA`` once, at its first primitive: ``runtime`` sets it on import, before
any command of the project runs a convolution. Code that ran oneDNN before importing the project keeps
the ISA it started with.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # oneDNN reads either; a user's value is kept
ALLOW_AMX = "PONA_ALLOW_AMX"
CAP = "AVX512_CORE_BF16"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags as Linux lists them (x86 ``flags``, Arm ``Features``); None where the
    file cannot be read (not Linux), so that callers can tell "no flag" from "cannot tell"."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def cpu_has_amx(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU flags list ``amx_bf16`` (False where the file cannot be read: not Linux)."""
    return "amx_bf16" in (cpu_flags(cpuinfo) or ())


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512-BF16, x86 AMX, Arm BF16 (ARMv8.6)


def cpu_flags_say_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """Whether the CPU computes bf16 matrix products in hardware, from its flags; None where the flags
    cannot be read. oneDNN's own check (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) also says yes on
    AVX512 CPUs without AVX512-BF16, where it emulates bf16 and runs slower than fp32 (README, "Precision
    and layout")."""
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return None
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def cap_amx(environ: MutableMapping[str, str] | None = None, has_amx: bool | None = None) -> str | None:
    """Set ``ONEDNN_MAX_CPU_ISA`` to AVX512-BF16 on an AMX CPU unless the user chose; returns the value
    set, or None where nothing was changed."""
    env = os.environ if environ is None else environ
    if env.get(ALLOW_AMX, "").strip() == "1" or any(v in env for v in ISA_VARIABLES):
        return None
    if not (cpu_has_amx() if has_amx is None else has_amx):
        return None
    env[ISA_VARIABLES[0]] = CAP
    return CAP
