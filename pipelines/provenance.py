"""What produced a results.json: code version, package versions, the device, precision and thread
count actually used, and the command line. The README says results depend on the machine and thread
count, so a number without these cannot be reproduced or compared."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from runtime.device import precision_name, resolve_device, resolve_precision

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "pillow", "dask", "distributed", "scikit-image", "pona-reid")
REPO = Path(__file__).resolve().parent.parent


def commit() -> str:
    """``git describe``-like: the commit of the code, with ``+dirty`` when files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return head + ("+dirty" if dirty else "")


def cpu_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform`` knows: bf16 kernels differ
    between CPU families, so a CPU number is only comparable with one from the same model."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def made_on() -> dict[str, Any]:
    """What about this process changes a stage's numbers besides its inputs: the CPU model, the GPU if
    there is one, and torch's thread count (bf16 sums split over another number of threads round
    differently; bench/thread_count_numerics.py). Recorded with each stage, since a cached stage may
    have been made by another run with other settings."""
    return {"cpu": cpu_name(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch_threads": torch.get_num_threads()}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def provenance(config: dict[str, Any], started_at: str | None = None) -> dict[str, Any]:
    """The facts of this process for a run whose resolved config (``to_dict``) is ``config``.
    ``started_at``: ``commit()`` taken when the run started, which is the code that ran; the checkout
    may have moved on by the time a long run writes its report (then ``commit_at_report`` says so)."""
    device = resolve_device(config.get("device", "auto"))
    now = commit()
    code = {"commit": started_at or now}
    if started_at and started_at != now:
        code["commit_at_report"] = now
    return {
        **code, "versions": versions(), "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
        cpu_name(),
        "precision": precision_name(resolve_precision(config.get("precision", "auto"), device)),
        "threads": {"torch": torch.get_num_threads(), "reid": config.get("reid", {}).get("threads"),
                    "generator": config.get("generator", {}).get("train", {}).get("threads")},
        "host": platform.node(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
