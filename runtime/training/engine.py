"""The resumable-training engine both trainers run on (PoNA / PATN in ``pona_model.trainer``, re-ID and
its pretraining in ``reid.trainer``).

The engine owns what every run needs and no trainer should redo: the run folder, the checkpoint
(written atomically, with the config, the precision and every RNG state), the checks before a resume,
device / precision / layout, Ctrl-C held until the step ends, periodic checkpoints, the JSON-lines log
(cut back to the resumed step, so it never holds a lost tail) and the progress bar. A trainer keeps its
models, its step and its own state, and tells the engine about them through ``Trainable``.

A run resumes exactly from any checkpoint when the trainer's data order is a function of the position
alone (the seed and the step or epoch): nothing but the checkpoint decides what comes next.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from runtime.atomic import atomic_write_text
from runtime.checkpoint import FORMAT_VERSION, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from runtime.config import config_differences, run_only_keys, to_dict
from runtime.device import precision_name, resolve_device, resolve_precision, torch_threads
from runtime.errors import CheckpointError
from runtime.jsonl_log import append_record, truncate_records
from runtime.training.interrupt import deferred_interrupt
from runtime.training.settings import RunSettings

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.jsonl"
CONFIG_NAME = "config.json"


@dataclass
class Step:
    """What one training step reports to the engine."""

    record: dict[str, Any]  # its log record, written every log_every steps (the engine adds "seconds")
    postfix: dict[str, str] = field(default_factory=dict)  # the progress bar's
    boundary: bool = False  # a checkpoint is due now whatever checkpoint_every says (re-ID: an epoch ended)
    events: list[dict[str, Any]] = field(default_factory=list)  # records always logged after it (epoch records)


class Trainable(Protocol):
    """What a trainer gives the engine. Its position (steps done) must say everything about what comes
    next together with ``own_state``: the data order is a function of the seed and the position."""

    unit: str  # what a step is called in messages and the progress bar: "iteration", "step"
    log_key: str  # the log-record key holding the position; records past it are dropped on resume
    desc: str  # the progress bar's label

    @property
    def position(self) -> int: ...

    @property
    def total_steps(self) -> int | None: ...  # the schedule's steps, when known ahead

    def own_state(self) -> dict[str, Any]: ...  # the checkpoint's entries beyond the engine's

    def load_own_state(self, state: dict[str, Any], source: Path) -> None: ...

    def check_resume(self, state: dict[str, Any], source: Path) -> dict[str, Any]: ...  # own checks; the stored config

    def batches(self, stop: int | None) -> Iterable[Any]: ...  # from ``position`` to ``stop`` (or the end)

    def train_step(self, batch: Any) -> Step: ...  # one step and its bookkeeping; advances ``position``

    def start_record(self) -> dict[str, Any]: ...  # the trainer's part of the log's start record

    def after_fit(self) -> None: ...  # after the last checkpoint of a fit (the generator's last sample grid)

    def summary(self) -> dict[str, Any]: ...  # the trainer's part of the summary ``fit`` returns


class TrainingRun:
    """One run folder and the loop that trains in it. ``precision`` overrides ``config.precision`` (the
    generator's ``amp=false`` forces fp32); ``precision_keys`` are the config keys that set it, left out
    of the config comparison because the resolved precision is compared instead."""

    def __init__(self, config: RunSettings, fmt: str, *, precision: str | None = None,
                 precision_keys: tuple[str, ...] = ("precision",)) -> None:
        self.config = config
        self.format = fmt
        self.out = Path(config.out)
        self.device = resolve_device(config.device)
        self.precision_setting = config.precision if precision is None else precision
        self.dtype = resolve_precision(self.precision_setting, self.device)  # autocast dtype; float32 = none
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.ignored_keys = (*run_only_keys(type(config)), *precision_keys)
        self._saved_at: int | None = None  # the position the folder's checkpoint holds, when this run knows it

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT_NAME

    @property
    def log_path(self) -> Path:
        return self.out / LOG_NAME

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    # ------------------------------------------------------------------ checkpoints
    def existing(self) -> dict[str, Any] | None:
        """The run folder's checkpoint, loaded (None when there is none). Checked before anything is
        written into the folder: ``resume=false`` with a checkpoint there is refused, not overwritten."""
        path = self.checkpoint_path
        if not path.exists():
            return None
        if not self.config.resume:
            raise CheckpointError(f"{path} exists; pass resume=true to continue it, or choose another out=")
        return load_checkpoint(path, self.format, map_location=self.device)

    def check_resume(self, trainer: Trainable, state: dict[str, Any], source: Path) -> None:
        """The one rule of both trainers: the trainer's own checks, then the same config except run-only
        keys, then the same precision as resolved here (not as written: ``auto`` may resolve otherwise)."""
        stored = trainer.check_resume(state, source)
        diff = config_differences(to_dict(self.config), stored, self.ignored_keys)
        if diff:
            raise CheckpointError(
                f"{source} was written with another config (differs in: {', '.join(diff)}). Use another out= for "
                f"the new config, or delete {source.parent} to start over.")
        trained = state.get("precision")
        if trained is not None and trained != self.precision:
            raise CheckpointError(
                f"{source} was trained in {trained} and precision={self.precision_setting} is {self.precision} "
                f"here: pass precision={trained} to resume it, or use another out=.")

    def restore(self, trainer: Trainable, state: dict[str, Any], source: Path) -> None:
        """Check ``state`` and continue from it: the trainer's state, then the RNG states. Imported
        weights (``imported``: no run state) skip the resume checks; the trainer checks what it needs."""
        if "imported" not in state:
            self.check_resume(trainer, state, source)
        trainer.load_own_state(state, source)
        if "rng" in state:
            set_rng_state(state["rng"], self.device)
        if Path(source) == self.checkpoint_path:
            self._saved_at = trainer.position

    def state(self, trainer: Trainable) -> dict[str, Any]:
        """The checkpoint: format tag, the trainer's state, the config, the precision and the RNG states."""
        return {"format": self.format, "version": FORMAT_VERSION, **trainer.own_state(),
                "config": to_dict(self.config), "precision": self.precision, "rng": rng_state(self.device)}

    def save(self, trainer: Trainable) -> Path:
        path = self.checkpoint_path
        save_checkpoint(path, self.state(trainer))
        self._saved_at = trainer.position
        return path

    # ------------------------------------------------------------------ the log
    def log(self, record: dict[str, Any]) -> None:
        append_record(self.log_path, record)

    # ------------------------------------------------------------------ the loop
    def _stop_if_interrupted(self, trainer: Trainable, interrupted: Callable[[], bool]) -> None:
        """Ctrl-C held past the loop (during the last save or ``after_fit``) still stops the caller: a
        run that returned normally would let a pipeline record the stage and go on to the next one, so
        the user's Ctrl-C would be lost. The checkpoint on disk is the last position's."""
        if interrupted():
            raise KeyboardInterrupt(f"stopped at {trainer.unit} {trainer.position}; checkpoint {self.checkpoint_path}")

    def fit(self, trainer: Trainable, max_steps: int | None = None, *, restore: bool = True,
            progress: bool = True) -> dict[str, Any]:
        """Train from the folder's checkpoint (``restore``; a trainer that restored it already passes
        false) to the end of the schedule, or ``max_steps`` more steps. ``threads`` applies while it
        trains; Ctrl-C finishes the step, saves and stops with a one-line ``KeyboardInterrupt``."""
        with torch_threads(self.config.threads), deferred_interrupt() as interrupted:
            return self._fit(trainer, max_steps, restore, progress, interrupted)

    def _fit(self, trainer: Trainable, max_steps: int | None, restore: bool, progress: bool,
             interrupted: Callable[[], bool]) -> dict[str, Any]:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        if restore and (state := self.existing()) is not None:
            self.restore(trainer, state, self.checkpoint_path)
            log.info("resumed %s at %s %d", self.checkpoint_path, trainer.unit, trainer.position)
        truncate_records(self.log_path, trainer.log_key, trainer.position)
        atomic_write_text(self.out / CONFIG_NAME, json.dumps(to_dict(cfg), indent=2) + "\n")
        start, total = trainer.position, trainer.total_steps
        stop = None if max_steps is None else start + max_steps
        if total is not None:
            stop = total if stop is None else min(stop, total)
        self.log({"event": "start", trainer.log_key: start, "device": str(self.device), "precision": self.precision,
                  "channels_last": cfg.channels_last, **trainer.start_record()})
        t0 = time.perf_counter()
        bar = tqdm(total=stop, initial=start, desc=trainer.desc, unit=trainer.unit, disable=not progress,
                   dynamic_ncols=True)
        batches = iter(trainer.batches(stop))
        try:
            for batch in batches:
                step = trainer.train_step(batch)
                n = trainer.position
                bar.update(1)
                if step.postfix:
                    bar.set_postfix(step.postfix, refresh=False)
                if cfg.log_every > 0 and (n % cfg.log_every == 0 or n == stop):
                    self.log({**step.record, "seconds": round(time.perf_counter() - t0, 3)})
                for event in step.events:
                    self.log(event)
                at_stop = stop is not None and n >= stop
                if step.boundary or (cfg.checkpoint_every > 0 and n % cfg.checkpoint_every == 0 and not at_stop):
                    self.save(trainer)
                if interrupted():  # Ctrl-C: keep this step's work, then stop
                    raise KeyboardInterrupt(f"stopped at {trainer.unit} {n}; checkpoint {self.save(trainer)}")
                if at_stop:
                    break
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # stops the loader's worker processes now, not whenever the generator is collected
            bar.close()
        path = self.checkpoint_path
        if self._saved_at != trainer.position or not path.exists():
            self.save(trainer)
        self._stop_if_interrupted(trainer, interrupted)  # Ctrl-C during the last save: saved, now stop
        trainer.after_fit()
        self._stop_if_interrupted(trainer, interrupted)
        summary = trainer.summary()
        log.info("%s at %s %d; checkpoint %s", "finished" if summary.get("finished") else "stopped", trainer.unit,
                 trainer.position, path)
        return {**summary, "checkpoint": str(path), "seconds": time.perf_counter() - t0}
