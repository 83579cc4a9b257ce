"""Training the re-ID baseline: cross-entropy over the training identities, one checkpoint per epoch.

Under ``budget=iterations`` the run is a number of optimiser steps (``reid.step_budget``): it makes
passes over the data until they are done, the last pass possibly partial, and the learning-rate decay
and warm-up follow the step count.

The checkpoint holds everything a resumed run needs to continue as if never stopped: weights,
optimiser, scheduler, the completed epoch (pass), the optimiser steps and the global RNG states
(torch, Python, NumPy; CUDA when used) that dropout, augmentation in the main process and
torchreid's identity sampler draw from. A partial last pass ends the run, so every checkpoint a run
resumes from lies at the end of a pass. The data order and the loader workers' seeds of epoch ``e`` come from generators seeded by
(seed, e), so they need no saved state. Everything stored is a tensor or a plain Python value, so
the file loads with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from reid.data import ManifestDataset, read_manifest, train_sampler, train_transform, write_manifest
from reid.losses import ReidLoss
from reid.market_index import MarketLayoutError, index_market
from reid.model import build_model, build_optimizer
from reid.step_budget import StepSchedule, identity_counts, step_schedule
from reid.train_config import RETIRED_KEYS, RUN_CONTROL_KEYS, ReidTrainConfig, current_keys
from runtime import config as runtime_config
from runtime.atomic import atomic_write_text
from runtime.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from runtime.config import config_differences, to_dict
from runtime.device import (
    autocast,
    loader_context,
    precision_name,
    resolve_device,
    resolve_precision,
    torch_threads,
)
from runtime.errors import TrainingDiverged
from runtime.jsonl_log import append_record, truncate_records

log = logging.getLogger(__name__)

REID_FORMAT = "reid-baseline-training"
CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.jsonl"
MANIFEST_NAME = "train_manifest.csv"

__all__ = ["CHECKPOINT_NAME", "LOG_NAME", "MANIFEST_NAME", "REID_FORMAT", "ReidTrainer", "TrainingDiverged",
           "config_from_checkpoint"]


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


def fingerprint(table: pd.DataFrame) -> str:
    """Content of a training set (file names, identities, cameras), to refuse resuming on another."""
    names = [Path(p).name for p in table["path"]]
    rows = sorted(f"{n},{int(i)},{int(c)}" for n, i, c in zip(names, table["identity"], table["camera"]))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


class ReidTrainer:
    """``ReidTrainer(config).fit()`` trains (or resumes) the run in ``config.out``."""

    def __init__(self, config: ReidTrainConfig) -> None:
        self.config = config
        self.out = Path(config.out)
        self.device = resolve_device(config.device)
        self.dtype = resolve_precision(config.precision, self.device)  # autocast dtype; float32 = none
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format

        table = training_table(config)
        self.fingerprint = fingerprint(table)
        ckpt = self.out / CHECKPOINT_NAME
        state = None
        if ckpt.exists():  # checked before anything is written into the run folder
            if not config.resume:
                raise CheckpointError(f"{ckpt} exists; pass resume=true to continue it, or choose another out=")
            state = load_checkpoint(ckpt, REID_FORMAT, map_location=self.device)
            n_ids = int(table.loc[table["identity"] > 0, "identity"].nunique())
            self._check_compatible(state, ckpt, len(table), n_ids)
        self.out.mkdir(parents=True, exist_ok=True)
        self.manifest = write_manifest(table, self.out / MANIFEST_NAME)
        d = config.data
        self.dataset = ManifestDataset(self.manifest, mode="train",
                                       transform=train_transform(d.image_size, d.pad, d.flip, d.erasing_p))
        self.n_classes = self.dataset.num_train_pids
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
        self._steps_in_epoch = 0
        self.last_epoch_record: dict[str, Any] = {}
        if state is not None:
            self.load_state_dict(state, ckpt)
            log.info("resuming %s after epoch %d / %d (%d optimiser steps)", ckpt, self.epoch, self.epochs,
                     self.optimizer_steps)

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

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": REID_FORMAT, "version": FORMAT_VERSION,
            "epoch": self.epoch, "epochs": self.epochs, "optimizer_steps": self.optimizer_steps,
            "finished": self.finished,
            "config": to_dict(self.config), "weights_init": self.weights_init,
            "precision": precision_name(self.dtype),
            "n_classes": self.n_classes, "identities": [int(i) for i in self.dataset.identities],
            "train_images": len(self.dataset), "train_fingerprint": self.fingerprint,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rng_state(self.device),
            "last_epoch": dict(self.last_epoch_record), "torch_version": str(torch.__version__),
        }

    def _check_compatible(self, state: dict[str, Any], source: Path, n_images: int, n_ids: int) -> None:
        retired = {k: v for k, v in state["config"].items() if k in RETIRED_KEYS and v}
        if retired:  # budget_images > 0: trained under the image-scaled iterations budget, another schedule
            raise CheckpointError(
                f"{source} was trained under the retired image-count step budget "
                f"({', '.join(f'{k}={v}' for k, v in retired.items())}); it cannot continue under the step budget "
                "(budget_steps): use another out=, or delete the run folder to start over.")
        diff = config_differences(to_dict(self.config), current_keys(state["config"]), RUN_CONTROL_KEYS)
        if diff:
            raise CheckpointError(
                f"{source} was written with another config (differs in: {', '.join(diff)}). Use another out= for "
                "the new config, or delete the run folder to start over.")
        stored = state.get("precision", precision_name(self.dtype))
        if stored != precision_name(self.dtype):
            raise CheckpointError(
                f"{source} was trained in {stored} and precision={self.config.precision} resolves to "
                f"{precision_name(self.dtype)} here: pass precision={stored} to resume it")
        if state["train_fingerprint"] != self.fingerprint:
            raise CheckpointError(
                f"{source} was trained on another training set ({state['train_images']} images, "
                f"{state['n_classes']} classes; this one: {n_images} images, {n_ids} identities). "
                "A checkpoint resumes only on the same images; use another out= for this training set.")

    def load_state_dict(self, state: dict[str, Any], source: Path) -> None:
        self._check_compatible(state, source, len(self.dataset), self.n_classes)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{source} does not match this model: {str(exc).splitlines()[0]}") from exc
        set_rng_state(state["rng"], self.device)
        self.epoch = int(state["epoch"])
        steps = state.get("optimizer_steps")  # absent from checkpoints older than the key: counted from the log
        self.optimizer_steps = int(steps) if steps is not None else self._logged_steps()
        self.weights_init = state["weights_init"]
        self.last_epoch_record = dict(state.get("last_epoch", {}))

    def _logged_steps(self) -> int:
        """The optimiser steps of the completed epochs, as their log records count them."""
        path = self.out / LOG_NAME
        if not path.exists():
            return 0
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return sum(int(r.get("steps", 0)) for r in records
                   if r.get("event") == "epoch" and int(r.get("epoch", 0)) <= self.epoch)

    def save(self) -> Path:
        path = self.out / CHECKPOINT_NAME
        save_checkpoint(path, self.state_dict())
        return path

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

    # ------------------------------------------------------------------ the run
    def _epoch_loader(self, epoch: int) -> DataLoader:
        cfg = self.config
        seed = cfg.seed * 1_000_003 + epoch
        sampler = train_sampler(self.dataset, cfg.data.sampler, cfg.optim.batch_size, cfg.data.num_instances,
                                generator=torch.Generator().manual_seed(seed))
        return DataLoader(self.dataset, batch_size=cfg.optim.batch_size, sampler=sampler, drop_last=True,
                          num_workers=cfg.num_workers, pin_memory=self.device.type == "cuda",
                          multiprocessing_context=loader_context(cfg.num_workers), generator=torch.Generator().manual_seed(seed + 500_009))  # worker seeds

    def _lrs(self) -> dict[str, float]:
        return {f"lr_{g.get('name', i)}": float(g["lr"]) for i, g in enumerate(self.optimizer.param_groups)}

    def _log(self, record: dict[str, Any]) -> None:
        append_record(self.out / LOG_NAME, record)

    def _truncate_log(self) -> None:
        """Drop log records past the resumed epoch: they belong to the lost tail of the old run."""
        truncate_records(self.out / LOG_NAME, "epoch", self.epoch)

    def fit(self, max_epochs: int | None = None) -> dict[str, Any]:
        """Train to the end of the schedule (or ``max_epochs`` more epochs); returns a summary.
        ``threads`` applies while it trains."""
        with torch_threads(self.config.threads):
            return self._fit(max_epochs)

    def _fit(self, max_epochs: int | None) -> dict[str, Any]:
        cfg = self.config
        ckpt = self.out / CHECKPOINT_NAME
        self._truncate_log()
        atomic_write_text(self.out / "config.json", json.dumps(to_dict(cfg), indent=2) + "\n")
        total = self.epochs
        stop = total if max_epochs is None else min(total, self.epoch + max_epochs)
        log.info("training %s/%s (%s) on %d images of %d identities, epochs %d..%d of %d on %s; writing to %s",
                 cfg.model.backbone, cfg.model.head, self.weights_init, len(self.dataset), self.n_classes,
                 self.epoch + 1, stop, total, self.device, self.out)
        budget = {} if self.budget is None else {"budget_steps": self.budget.steps, "steps_per_pass": self.budget.per_pass,
                                                 "decay_every": self.budget.decay_every,
                                                 "warmup_steps": self.budget.warmup_steps}
        self._log({"event": "start", "epoch": self.epoch, "device": str(self.device), "precision": precision_name(self.dtype),
                   "channels_last": cfg.channels_last,
                   "weights_init": self.weights_init, "train_images": len(self.dataset),
                   "n_classes": self.n_classes, "steps_per_epoch": self.steps_per_epoch, "budget": cfg.budget,
                   **budget, "optimizer_steps": self.optimizer_steps})
        t_run = time.perf_counter()
        epochs_bar = tqdm(total=total, initial=self.epoch, desc="re-ID epochs", unit="epoch",
                          disable=not cfg.progress, dynamic_ncols=True)
        self.model.train()
        first = self.epoch
        while not self.finished and (max_epochs is None or self.epoch < first + max_epochs):
            limit = None if self.budget is None else self.budget.steps - self.optimizer_steps
            self.last_epoch_record = self._train_epoch(limit)
            self.epoch += 1
            if self.budget is None:
                self.scheduler.step()  # the decay counts epochs
            self._log(self.last_epoch_record)
            self.save()
            epochs_bar.update(1)
            epochs_bar.set_postfix(loss=f"{self.last_epoch_record['loss']:.3f}",
                                   acc=f"{self.last_epoch_record['acc']:.3f}", refresh=False)
        epochs_bar.close()
        if not ckpt.exists():
            self.save()
        done = self.finished
        log.info("%s after epoch %d (%d optimiser steps); checkpoint %s", "finished" if done else "stopped",
                 self.epoch, self.optimizer_steps, ckpt)
        return {"epoch": self.epoch, "finished": done, "checkpoint": str(ckpt), "weights_init": self.weights_init,
                "optimizer_steps": self.optimizer_steps, "budget": cfg.budget,
                "precision": precision_name(self.dtype),
                "n_classes": self.n_classes, "train_images": len(self.dataset), **{
                    k: self.last_epoch_record[k] for k in ("loss", "acc", "seconds_per_step")
                    if k in self.last_epoch_record},
                "seconds": time.perf_counter() - t_run}

    def _train_epoch(self, limit: int | None = None) -> dict[str, Any]:
        """One pass over the data, or its first ``limit`` steps (the step budget's last, partial pass)."""
        cfg = self.config
        epoch = self.epoch + 1  # 1-based number of the epoch being trained
        lrs = self._lrs()
        loader = self._epoch_loader(self.epoch)
        loss_sum, correct, seen, steps = 0.0, 0, 0, 0
        t0 = time.perf_counter()
        bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch}", unit="step", leave=False,
                   disable=not cfg.progress, dynamic_ncols=True)
        self._steps_in_epoch = 0
        for batch in bar:
            step_lrs = self._lrs()  # the rates this step runs at (budget=iterations decays within a pass)
            loss, right, n = self.step(batch)
            steps += 1
            self._steps_in_epoch = steps
            loss_sum += loss * n
            correct += right
            seen += n
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if cfg.log_every > 0 and steps % cfg.log_every == 0:
                step = self.epoch * self.steps_per_epoch + steps if self.budget is None else self.optimizer_steps
                self._log({"epoch": epoch, "step": step, "loss": loss, "acc": right / n, **step_lrs,
                           "seconds": round(time.perf_counter() - t0, 3)})
            if steps == limit:
                break
        bar.close()
        if steps == 0:
            raise RuntimeError(f"epoch {epoch}: the training loader yielded no batch; check optim.batch_size and "
                               "data.num_instances against the training set")
        seconds = time.perf_counter() - t0
        return {"event": "epoch", "epoch": epoch, "loss": loss_sum / max(seen, 1), "acc": correct / max(seen, 1),
                **lrs, "steps": steps, "optimizer_steps": self.optimizer_steps, "images": seen,
                "seconds": round(seconds, 3),
                "seconds_per_step": round(seconds / max(steps, 1), 4)}


def config_from_checkpoint(state: dict[str, Any]) -> ReidTrainConfig:
    """Rebuild the typed config a checkpoint was trained with (the stored dict is plain data)."""
    return runtime_config.config_from_checkpoint(ReidTrainConfig, {**state, "config": current_keys(state["config"])})
