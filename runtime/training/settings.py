"""The settings every training run has, declared once: output folder, seed, device, precision, layout,
threads, resume, checkpoint and log cadence, loader workers.

Both trainer configs (``pona_model.train_config.TrainConfig``, ``reid.train_config.ReidTrainConfig``)
subclass ``RunSettings``, so the keys users type stay flat (``generator.train.threads``,
``reid.checkpoint_every``) and each has one help text. A trainer that needs another default redeclares
the field with ``setting(name, default)``, which keeps the help and the run-only flag.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from runtime.config import Bounded, param
from runtime.device import PRECISIONS


@dataclass
class RunSettings(Bounded):
    """The shared keys of every training config (a base class; trainers add their own keys)."""

    out: str = param("runs/train", "run folder: checkpoint.pt, config.json, train_log.jsonl and the trainer's own "
                     "files", run_only=True)
    seed: int = param(0, "seed of initialisation, data order, augmentation and dropout (and the generator's "
                      "history pool)")
    device: str = param("auto", "auto (cuda if available, else cpu), cpu, cuda, cuda:N, mps", run_only=True)
    precision: str = param("auto", "autocast dtype of the forward passes: auto (bf16 on CUDA and on CPUs with "
                           "native bf16, else fp32), fp32 or bf16; losses, norm statistics and optimiser state stay "
                           "fp32. A checkpoint resumes only in the precision it was trained in", choices=PRECISIONS)
    channels_last: bool = param(False, "channels-last (NHWC) memory layout for models and batches (faster convs on "
                                "CPU and on CUDA tensor cores; same numbers up to float rounding)")
    threads: int = param(0, "CPU threads for torch while training (0 = torch's default)", run_only=True)
    resume: bool = param(True, "continue from out/checkpoint.pt when present (same config and precision required)",
                         run_only=True)
    checkpoint_every: int = param(1000, "steps between periodic checkpoints (0 = none); one is also written at the "
                                  "end, on Ctrl-C and, in re-ID training, after every epoch", run_only=True)
    log_every: int = param(50, "steps between JSON-lines step records (0 = none; re-ID also writes one record per "
                           "epoch)", run_only=True)
    num_workers: int = param(2, "data-loading worker processes (0 = load in the main process)", run_only=True)


_SHARED = {f.name: f for f in dataclasses.fields(RunSettings)}


def setting(name: str, default: Any) -> Any:
    """A subclass's own default for the shared key ``name``: same help, choices and run-only flag."""
    if name not in _SHARED:
        raise KeyError(f"{name!r} is not a shared training setting; known: {', '.join(_SHARED)}")
    return dataclasses.field(default=default, metadata=_SHARED[name].metadata)
