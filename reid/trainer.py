"""Training the re-ID baseline: cross-entropy over the training identities, on the training engine.

Under ``budget=iterations`` the run is a number of optimiser steps (``reid.step_budget``): it makes
passes over the data until they are done, the last pass possibly partial, and the learning-rate decay
and warm-up follow the step count.

A run resumes exactly from any step. The engine (``runtime.training``) writes a checkpoint after every
epoch, every ``checkpoint_every`` steps and on Ctrl-C; it holds the weights, optimiser, scheduler, the
completed epochs (passes), the steps into the current one and their running tally, the optimiser steps
and the global RNG states (dropout). The data needs no saved state: epoch ``e``'s batches and each
image's augmentation are functions of (seed, e, batch) (``reid.data_order``), so a resumed run rebuilds
the epoch and skips the batches already trained. Everything stored is a tensor or a plain Python
value, so the file loads with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from reid.data import ManifestDataset, read_manifest, train_transform, write_manifest
from reid.data_order import DATA_ORDER_VERSION, Batch, batch_loader, epoch_batches
from reid.losses import ReidLoss
from reid.market_index import MarketLayoutError, index_market
from reid.model import build_model, build_optimizer
from reid.step_budget import StepSchedule, identity_counts, step_schedule
from reid.train_config import RETIRED_KEYS, ReidTrainConfig, current_keys
from runtime import config as runtime_config
from runtime.device import autocast
from runtime.errors import CheckpointError, TrainingDiverged
from runtime.training import CHECKPOINT_NAME, Step, TrainingRun

log = logging.getLogger(__name__)

REID_FORMAT = "reid-baseline-training"
MANIFEST_NAME = "train_manifest.csv"

__all__ = ["MANIFEST_NAME", "REID_FORMAT", "ReidTrainer", "config_from_checkpoint"]


def training_table(config: ReidTrainConfig) -> pd.DataFrame:
    """The training images: ``data.manifest`` (split=train rows) if set, else ``data.root``'s
    bounding_box_train indexed by ``reid.market_index``."""
    d = config.data
    if d.manifest:
        table = read_manifest(d.manifest)
        table = table[table["split"] == "train"].reset_index(drop=True)
        if table.empty:
            raise MarketLayoutError(f"data.manifest={d.manifest} has no split=train rows")
        return table
    if not d.root:
        raise MarketLayoutError("set data.root to a Market-layout folder (or data.manifest to a CSV manifest)")
    return index_market(d.root, splits=("train",), progress=False)


def synthesised_names(config: ReidTrainConfig) -> frozenset[str]:
    """Names of the synthesised training images (``manifest.csv`` of a merged training folder, source
    ``generated``, or ``copied`` for the copy control, which mirrors it), for ``loss.generated_label``."""
    path = Path(config.data.root) / "manifest.csv" if config.data.root and not config.data.manifest else None
    if path is None or not path.is_file():
        return frozenset()
    table = pd.read_csv(path)
    if "source" not in table.columns or "name" not in table.columns:
        return frozenset()
    return frozenset(table.loc[table["source"] != "real", "name"].astype(str))


def training_set_digest(table: pd.DataFrame) -> str:
    """Content of a training set (file names, identities, cameras), to refuse resuming on another."""
    names = [Path(p).name for p in table["path"]]
    rows = sorted(f"{n},{int(i)},{int(c)}" for n, i, c in zip(names, table["identity"], table["camera"]))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


@dataclass
class EpochTally:
    """The running sums of the epoch in progress, for its log record; saved with a mid-epoch checkpoint."""

    lrs: dict[str, float] = field(default_factory=dict)  # the rates at the epoch's start
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0  # spent in the epoch before the run was cut (a resumed epoch adds its own)


class ReidTrainer:
    """``ReidTrainer(config).fit()`` trains (or resumes) the run in ``config.out``, on the training engine
    (``self.run``)."""

    unit = "step"  # the engine's names for a step: in messages, the progress bar and the log
    log_key = "optimizer_steps"
    desc = "re-ID training"

    def __init__(self, config: ReidTrainConfig) -> None:
        self.config = config
        self.run = TrainingRun(config, REID_FORMAT)
        self.out, self.device, self.dtype = self.run.out, self.run.device, self.run.dtype
        self.memory_format = self.run.memory_format

        table = training_table(config)
        self.training_set_digest = training_set_digest(table)
        self._table_size = (len(table), int(table.loc[table["identity"] > 0, "identity"].nunique()))
        ckpt = self.run.checkpoint_path
        state = self.run.existing()
        if state is not None:  # checked before anything is written into the run folder
            self.run.check_resume(self, state, ckpt)
        self.out.mkdir(parents=True, exist_ok=True)
        self.manifest = write_manifest(table, self.out / MANIFEST_NAME)
        d = config.data
        self.dataset = ManifestDataset(self.manifest, mode="train",
                                       transform=train_transform(d.image_size, d.pad, d.flip, d.erasing_p,
                                                                 d.color_jitter))
        self.n_classes = self.dataset.num_train_pids
        self._table_size = (len(self.dataset), self.n_classes)
        self.steps_per_epoch = len(self.dataset) // config.optim.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training set has {len(self.dataset)} images, fewer than optim.batch_size="
                             f"{config.optim.batch_size}: lower the batch size")

        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed)
        # A resumed run takes its weights from the checkpoint (the ImageNet file need not exist any more).
        self.model, self.weights_init = build_model(config.model, self.n_classes, load_weights=state is None)
        self.model.to(self.device, memory_format=self.memory_format)
        self.optim = config.optim
        # budget=iterations: the schedule in optimiser steps (the decay is then stepped per step); else None
        self.budget: StepSchedule | None = step_schedule(
            config, identity_counts(label for _, label, *_ in self.dataset.train))
        o = self.optim
        self.optimizer = build_optimizer(self.model, o, self.device)
        decay_every = o.step_size if self.budget is None else self.budget.decay_every
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=decay_every, gamma=o.gamma)
        self.loss = ReidLoss(config.loss, self.n_classes)
        self.synthesised = synthesised_names(config) if config.loss.generated_label != "hard" else frozenset()
        self.epoch = 0  # completed epochs (passes over the data)
        self.optimizer_steps = 0  # completed optimiser steps, all epochs together
        self._steps_in_epoch = 0  # completed steps of the epoch in progress
        self._tally = EpochTally()
        self._epoch_len = 0  # batches of the epoch in progress (its budget-cut length)
        self._epoch_started = time.perf_counter()
        self._max_epochs: int | None = None
        self.last_epoch_record: dict[str, Any] = {}
        if state is not None:
            self.run.restore(self, state, ckpt)
            log.info("resuming %s at epoch %d / %d, step %d of it (%d optimiser steps)", ckpt, self.epoch + 1,
                     self.epochs, self._steps_in_epoch, self.optimizer_steps)

    # ------------------------------------------------------------------ the schedule
    @property
    def epochs(self) -> int:
        """Epochs of the run: ``optim.epochs``, or under ``budget=iterations`` the passes its steps take (at
        least ``budget.passes``: a pass of the identity sampler can end a batch early)."""
        return self.optim.epochs if self.budget is None else max(self.budget.passes, self.epoch)

    @property
    def finished(self) -> bool:
        if self.budget is None:
            return self.epoch >= self.optim.epochs
        return self.optimizer_steps >= self.budget.steps

    @property
    def position(self) -> int:
        return self.optimizer_steps

    @property
    def total_steps(self) -> int | None:
        return None if self.budget is None else self.budget.steps

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The whole checkpoint (the engine adds format, config, precision and RNG states to ``own_state``)."""
        return self.run.state(self)

    def own_state(self) -> dict[str, Any]:
        tally = asdict(self._tally)
        tally["seconds"] = round(self._tally.seconds + time.perf_counter() - self._epoch_started, 3) \
            if self._steps_in_epoch else 0.0
        return {
            "epoch": self.epoch, "epochs": self.epochs, "optimizer_steps": self.optimizer_steps,
            "steps_in_epoch": self._steps_in_epoch, "epoch_tally": tally, "data_order": DATA_ORDER_VERSION,
            "finished": self.finished, "weights_init": self.weights_init,
            "n_classes": self.n_classes, "identities": [int(i) for i in self.dataset.identities],
            "train_images": len(self.dataset), "train_fingerprint": self.training_set_digest,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "last_epoch": dict(self.last_epoch_record), "torch_version": str(torch.__version__),
        }

    def check_resume(self, state: dict[str, Any], source: Path) -> dict[str, Any]:
        """This trainer's checks before the engine's (config, precision); returns the stored config
        without its retired keys."""
        retired = {k: v for k, v in state["config"].items() if k in RETIRED_KEYS and v}
        if retired:  # budget_images > 0: trained under the image-scaled iterations budget, another schedule
            raise CheckpointError(
                f"{source} was trained under the retired image-count step budget "
                f"({', '.join(f'{k}={v}' for k, v in retired.items())}); it cannot continue under the step budget "
                "(budget_steps): use another out=, or delete the run folder to start over.")
        order = int(state.get("data_order", 1))
        if order != DATA_ORDER_VERSION and not state.get("finished"):
            raise CheckpointError(
                f"{source} was trained with re-ID data order {order} and this code draws order {DATA_ORDER_VERSION} "
                "(reid/data_order.py), so it cannot continue that run exactly: use another out=, or delete "
                f"{source.parent} to start over.")
        if state["train_fingerprint"] != self.training_set_digest:
            n_images, n_ids = self._table_size
            raise CheckpointError(
                f"{source} was trained on another training set ({state['train_images']} images, "
                f"{state['n_classes']} classes; this one: {n_images} images, {n_ids} identities). "
                "A checkpoint resumes only on the same images; use another out= for this training set.")
        return current_keys(state["config"])

    def load_state_dict(self, state: dict[str, Any], source: Path) -> None:
        """Continue from a checkpoint: the engine's resume checks, this trainer's state, the RNG states."""
        self.run.restore(self, state, Path(source))

    def load_own_state(self, state: dict[str, Any], source: Path) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{source} does not match this model: {str(exc).splitlines()[0]}") from exc
        self.epoch = int(state["epoch"])
        steps = state.get("optimizer_steps")  # absent from checkpoints older than the key: counted from the log
        self.optimizer_steps = int(steps) if steps is not None else self._logged_steps()
        self._steps_in_epoch = int(state.get("steps_in_epoch", 0))
        self._tally = EpochTally(**state["epoch_tally"]) if self._steps_in_epoch else EpochTally()
        self.weights_init = state["weights_init"]
        self.last_epoch_record = dict(state.get("last_epoch", {}))

    def _logged_steps(self) -> int:
        """The optimiser steps of the completed epochs, as their log records count them."""
        path = self.run.log_path
        if not path.exists():
            return 0
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return sum(int(r.get("steps", 0)) for r in records
                   if r.get("event") == "epoch" and int(r.get("epoch", 0)) <= self.epoch)

    def save(self) -> Path:
        return self.run.save(self)

    # ------------------------------------------------------------------ one step
    def warmup_factor(self) -> float:
        """layumi's warm-up: the loss of global step k (0-based) is scaled by min(1, 0.1 + 0.9 (k + 1) / W),
        W = warmup_epochs x steps per epoch (``budget=iterations``: the step schedule's warm-up steps, and
        k the optimiser steps done). A function of the step count alone, so resume needs no more state."""
        if self.budget is None:
            warm_steps = self.optim.warmup_epochs * self.steps_per_epoch
            k = self.epoch * self.steps_per_epoch + self._steps_in_epoch
        else:
            warm_steps, k = self.budget.warmup_steps, self.optimizer_steps
        if warm_steps <= 0:
            return 1.0
        return min(1.0, 0.1 + 0.9 * (k + 1) / warm_steps)

    def step(self, batch: dict[str, Any]) -> tuple[float, int, int]:
        """One SGD step on a batch; returns (loss, correct predictions, images)."""
        images = batch["img"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        labels = torch.as_tensor(batch["pid"]).to(self.device, non_blocking=True)
        with autocast(self.device, self.dtype):
            logits, feature = self.model.forward_train(images)
        generated = None
        if self.synthesised:
            generated = torch.tensor([Path(p).name in self.synthesised for p in batch["impath"]], device=self.device)
        loss, _ = self.loss(logits, feature, labels, generated)
        self.optimizer.zero_grad(set_to_none=True)
        (loss * self.warmup_factor()).backward()
        self.optimizer.step()
        self.optimizer_steps += 1
        if self.budget is not None:
            self.scheduler.step()  # the decay counts optimiser steps
        value = float(loss.detach())
        if not np.isfinite(value):
            raise TrainingDiverged(f"epoch {self.epoch + 1}: the loss became {value}; the last good checkpoint is "
                                   f"{self.out / CHECKPOINT_NAME} (lower optim.lr?)")
        correct = int((logits.detach().argmax(1) == labels).sum())
        return value, correct, int(labels.numel())

    # ------------------------------------------------------------------ the data
    def epoch_order(self, epoch: int) -> list[Batch]:
        """Epoch ``epoch``'s batches (0-based), cut where the step budget ends (its last, partial pass)."""
        cfg = self.config
        batches = epoch_batches(self.dataset, cfg.data, cfg.optim.batch_size, cfg.seed, epoch)
        if self.budget is not None and epoch == self.epoch:
            batches = batches[:self.budget.steps - (self.optimizer_steps - self._steps_in_epoch)]
        return batches

    def _epoch_loader(self, epoch: int) -> DataLoader:
        """A loader of epoch ``epoch``'s batches from its start."""
        return batch_loader(self.dataset, epoch_batches(self.dataset, self.config.data, self.config.optim.batch_size,
                                                        self.config.seed, epoch),
                            self.config.num_workers, pin_memory=self.device.type == "cuda")

    def _lrs(self) -> dict[str, float]:
        return {f"lr_{g.get('name', i)}": float(g["lr"]) for i, g in enumerate(self.optimizer.param_groups)}

    # ------------------------------------------------------------------ the run
    def fit(self, max_epochs: int | None = None, max_steps: int | None = None) -> dict[str, Any]:
        """Train to the end of the schedule (or ``max_epochs`` more epochs, or ``max_steps`` more steps,
        whichever ends first); returns a summary. ``threads`` applies while it trains."""
        self._max_epochs = max_epochs
        return self.run.fit(self, max_steps, restore=False, progress=self.config.progress)

    def batches(self, stop: int | None) -> Iterator[dict[str, Any]]:
        """The batches from the current step to the end of the schedule (or of ``max_epochs``), epoch by
        epoch; a resumed epoch skips the batches already trained."""
        cfg = self.config
        log.info("training %s/%s (%s) on %d images of %d identities, from epoch %d (step %d of it) of %d on %s in %s; "
                 "writing to %s", cfg.model.backbone, cfg.model.head, self.weights_init, len(self.dataset),
                 self.n_classes, self.epoch + 1, self._steps_in_epoch, self.epochs, self.device, self.run.precision,
                 self.out)
        self.model.train()
        first = self.epoch
        while not self.finished and (self._max_epochs is None or self.epoch < first + self._max_epochs):
            epoch = self.epoch
            order = self.epoch_order(epoch)
            if len(order) <= self._steps_in_epoch:
                raise RuntimeError(f"epoch {epoch + 1}: the training loader yielded no batch; check optim.batch_size "
                                   "and data.num_instances against the training set")
            self._epoch_len = len(order)
            if self._steps_in_epoch == 0:
                self._tally = EpochTally(lrs=self._lrs())
            self._epoch_started = time.perf_counter()
            for batch in batch_loader(self.dataset, order[self._steps_in_epoch:], self.config.num_workers,
                                      pin_memory=self.device.type == "cuda"):
                yield batch
                if self.epoch != epoch:
                    break

    def train_step(self, batch: dict[str, Any]) -> Step:
        lrs = self._lrs()  # the rates this step runs at (budget=iterations decays within a pass)
        loss, right, n = self.step(batch)
        self._steps_in_epoch += 1
        t = self._tally
        t.loss_sum += loss * n
        t.correct += right
        t.seen += n
        epoch = self.epoch + 1  # 1-based number of the epoch being trained
        step = self.epoch * self.steps_per_epoch + self._steps_in_epoch if self.budget is None else self.optimizer_steps
        record = {"epoch": epoch, "step": step, "optimizer_steps": self.optimizer_steps, "loss": loss,
                  "acc": right / n, **lrs}
        events = [self._end_epoch()] if self._steps_in_epoch == self._epoch_len else []
        return Step(record, postfix={"epoch": str(epoch), "loss": f"{loss:.3f}"}, boundary=bool(events),
                    events=events)

    def _end_epoch(self) -> dict[str, Any]:
        """Close the epoch in progress: its record, the per-epoch decay (``budget=epochs``), the counters."""
        t, steps = self._tally, self._steps_in_epoch
        seconds = t.seconds + time.perf_counter() - self._epoch_started
        self.last_epoch_record = {
            "event": "epoch", "epoch": self.epoch + 1, "loss": t.loss_sum / max(t.seen, 1),
            "acc": t.correct / max(t.seen, 1), **t.lrs, "steps": steps, "optimizer_steps": self.optimizer_steps,
            "images": t.seen, "seconds": round(seconds, 3), "seconds_per_step": round(seconds / max(steps, 1), 4)}
        self.epoch += 1
        self._steps_in_epoch = 0
        self._tally = EpochTally()
        if self.budget is None:
            self.scheduler.step()  # the decay counts epochs
        return self.last_epoch_record

    def start_record(self) -> dict[str, Any]:
        budget = {} if self.budget is None else {"budget_steps": self.budget.steps, "steps_per_pass": self.budget.per_pass,
                                                 "decay_every": self.budget.decay_every,
                                                 "warmup_steps": self.budget.warmup_steps}
        return {"epoch": self.epoch, "steps_in_epoch": self._steps_in_epoch, "weights_init": self.weights_init,
                "train_images": len(self.dataset), "n_classes": self.n_classes,
                "steps_per_epoch": self.steps_per_epoch, "budget": self.config.budget, **budget}

    def after_fit(self) -> None:
        pass

    def summary(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "finished": self.finished, "weights_init": self.weights_init,
                "optimizer_steps": self.optimizer_steps, "budget": self.config.budget, "precision": self.run.precision,
                "n_classes": self.n_classes, "train_images": len(self.dataset), **{
                    k: self.last_epoch_record[k] for k in ("loss", "acc", "seconds_per_step")
                    if k in self.last_epoch_record}}


def config_from_checkpoint(state: dict[str, Any]) -> ReidTrainConfig:
    """Rebuild the typed config a checkpoint was trained with (the stored dict is plain data)."""
    return runtime_config.config_from_checkpoint(ReidTrainConfig, {**state, "config": current_keys(state["config"])})
