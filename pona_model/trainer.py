"""The PoNA training loop: one G step, then D_A, then D_P, per iteration (docs/architecture.md, "Losses and training").

Everything a resumed run needs to reproduce the uninterrupted one is in the checkpoint: weights,
optimisers, schedulers, history pools, the global RNG state (dropout) and the iteration. Training
pairs for iteration i are drawn from a generator seeded by (seed, i), so the data order needs no
state at all and does not depend on the number of loader workers.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from pona_model.annotations import read_annotations, read_pairs
from pona_model.checkpoint import (
    FORMAT_VERSION,
    GENERATOR_FORMAT,
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pona_model.generator import generator_pose_maps, generator_pose_pair
from pona_model.history_pool import HistoryPool
from pona_model.interrupt import deferred_interrupt
from pona_model.losses import (
    MissingWeightsError,
    PerceptualLoss,
    RandomPerceptualLoss,
    find_vgg19_weights,
    gan_loss,
    vgg19_missing_message,
)
from pona_model.models import build_discriminators, build_generator
from pona_model.pair_dataset import PairDataset
from pona_model.sample_grid import save_sample_grid
from pona_model.train_config import RUN_CONTROL_KEYS, TrainConfig
from runtime import config as runtime_config
from runtime.atomic import atomic_write_text
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

CHECKPOINT_NAME = "checkpoint.pt"
ARCH_NAMES = {"pona": "PoNA", "patn": "PATN"}  # for the log and the progress bar
LOG_NAME = "train_log.jsonl"


class IterationBatches(Sampler[list[int]]):
    """Batches of pair indices for iterations ``start .. total-1``, drawn with replacement from a
    generator seeded by (seed, iteration): the same batch for the same iteration, however the run
    was split into resumed pieces."""

    def __init__(self, n_pairs: int, batch_size: int, seed: int, start: int, total: int) -> None:
        self.n_pairs, self.batch_size, self.seed, self.start, self.total = n_pairs, batch_size, seed, start, total

    def batch(self, iteration: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + iteration)
        return torch.randint(self.n_pairs, (self.batch_size,), generator=g).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for i in range(self.start, self.total):
            yield self.batch(i)

    def __len__(self) -> int:
        return max(0, self.total - self.start)


def linear_decay(iterations_per_epoch: float, n_epochs: int, n_epochs_decay: int):
    """The authors' schedule: constant, then linear to 0 over the last ``n_epochs_decay`` epochs.

    Reproduces their rule ``1 - max(0, epoch + 1 + epoch_count - niter) / (niter_decay + 1)`` with
    epoch_count = 1, stepped after each epoch: with 0-based epochs the factor is
    ``1 - max(0, e + 2 - n_epochs) / (n_epochs_decay + 1)``, so the decay already starts in the last
    nominally constant epoch and the final epoch runs at 0.
    """
    def factor(iteration: int) -> float:
        epoch = int(iteration / iterations_per_epoch)
        return max(0.0, 1.0 - max(0, epoch + 2 - n_epochs) / float(n_epochs_decay + 1))
    return factor


def generator_param_groups(generator: nn.Module, lr: float, gate_lr_mult: float) -> list[dict[str, Any]]:
    """Adam groups: the cross-attention gates at ``lr * gate_lr_mult``, everything else at ``lr``. With
    one scalar per block deciding whether the pose reaches the output at all, a faster gate lets the
    pose pathway open before the image path has learnt to do without it."""
    gates = generator.cross_attention_gates() if hasattr(generator, "cross_attention_gates") else []
    if gate_lr_mult == 1.0 or not gates:
        return [{"params": list(generator.parameters())}]
    gate_ids = {id(g) for g in gates}
    rest = [p for p in generator.parameters() if id(p) not in gate_ids]
    return [{"params": rest}, {"params": gates, "lr": lr * gate_lr_mult}]


def body_weighted_l1(fake: torch.Tensor, target: torch.Tensor, pose_target: torch.Tensor,
                     body_weight: float) -> torch.Tensor:
    """Mean |fake - target| with each pixel weighted 1 + body_weight * (how close it is to a target
    joint: the max over the target pose maps), normalised so that body_weight = 0 is the plain L1.
    The person is a minority of the pixels at 64 x 32; background L1 alone is met by a blur."""
    if body_weight == 0:
        return torch.nn.functional.l1_loss(fake, target)
    weight = 1.0 + body_weight * pose_target.float().amax(1, keepdim=True)
    return ((fake - target).abs() * weight).mean() / weight.mean()


class Trainer:
    def __init__(self, config: TrainConfig, check_data: bool = True) -> None:
        """``check_data=False`` builds the models and optimisers without a dataset (benchmarks)."""
        self.config = config
        self.out = Path(config.out)
        self.device = resolve_device(config.device)
        self.dtype = resolve_precision(config.precision if config.amp else "fp32", self.device)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.total_iterations = config.schedule.iterations()
        if check_data:
            self._check_data_paths()

        torch.manual_seed(config.seed)
        gen_cfg = config.generator
        self.generator = build_generator(gen_cfg).to(self.device)  # PoNA or PATN (generator.arch)
        # D_P sees image + target pose maps (3 + 18 ch), D_A image + condition image (3 + 3 ch).
        self.d_pose, self.d_app = (d.to(self.device) for d in build_discriminators(gen_cfg, config.discriminator))
        for net in (self.generator, self.d_pose, self.d_app):
            net.to(memory_format=self.memory_format)
        s = config.schedule
        betas = (s.beta1, s.beta2)
        self.opt_g = torch.optim.Adam(generator_param_groups(self.generator, s.lr, s.gate_lr_mult), lr=s.lr,
                                      betas=betas)
        self.opt_dp = torch.optim.Adam(self.d_pose.parameters(), lr=s.lr, betas=betas)
        self.opt_da = torch.optim.Adam(self.d_app.parameters(), lr=s.lr, betas=betas)
        rule = linear_decay(s.pairs_per_epoch / s.batch_size, s.n_epochs, s.n_epochs_decay)
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, rule) for o in (self.opt_g, self.opt_dp, self.opt_da)]
        self.pool_pose = HistoryPool(s.pool_size, seed=config.seed + 1)
        self.pool_app = HistoryPool(s.pool_size, seed=config.seed + 2)
        self.perceptual, self.perceptual_note = self._perceptual_loss()
        self.iteration = 0

    # ------------------------------------------------------------------ set-up
    def _check_data_paths(self) -> None:
        d = self.config.data
        for label, rel in (("data.images", d.images), ("data.annotations", d.annotations), ("data.pairs", d.pairs)):
            p = d.path(rel)
            if not p.exists():
                raise FileNotFoundError(
                    f"{label} = {p} does not exist (data.root = {d.root or '(unset)'}). For the project's "
                    "generated data run `python -m reid.synthmarket out=data/synthmarket` first; for Market-1501 "
                    "set data.root to the dataset folder with PATN annotation and pair CSVs.")

    def _perceptual_loss(self) -> tuple[nn.Module | None, str]:
        cfg = self.config.loss
        if cfg.lambda_perceptual == 0:
            return None, "off: lambda_perceptual = 0"
        if cfg.perceptual_net == "random":
            net = RandomPerceptualLoss(seed=self.config.seed).to(self.device, memory_format=self.memory_format)
            return net, f"{net.source} (relu1_2 + relu2_2)"
        weights = find_vgg19_weights(cfg.vgg_weights)
        if weights is None:
            if cfg.vgg_missing == "error":
                raise MissingWeightsError(vgg19_missing_message())
            note = "disabled: VGG-19 weights absent and loss.vgg_missing=disable, perceptual term not used"
            log.warning("perceptual loss %s", note)
            return None, note
        return PerceptualLoss(weights).to(self.device), f"VGG-19 relu1_2 from {weights}"

    def _dataset(self, images: str, annotations: str, pairs: str) -> PairDataset:
        d = self.config.data
        keypoints = read_annotations(d.path(annotations))
        return PairDataset(d.path(images), keypoints, read_pairs(d.path(pairs), known_names=keypoints),
                           image_size=tuple(self.config.generator.image_size))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": GENERATOR_FORMAT, "version": FORMAT_VERSION,
            "iteration": self.iteration, "total_iterations": self.total_iterations,
            "config": to_dict(self.config), "perceptual": self.perceptual_note,
            "precision": precision_name(self.dtype),
            "generator": self.generator.state_dict(), "d_pose": self.d_pose.state_dict(),
            "d_appearance": self.d_app.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d_pose": self.opt_dp.state_dict(),
            "opt_d_appearance": self.opt_da.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "pool_pose": self.pool_pose.state_dict(), "pool_appearance": self.pool_app.state_dict(),
            "rng": rng_state(self.device),
        }

    def load_state_dict(self, state: dict[str, Any], source: Path) -> None:
        if "imported" in state:  # weights from pona_model.import_checkpoint, no optimiser state
            return self.start_from_imported(state, source)
        diff = config_differences(to_dict(self.config), state["config"], RUN_CONTROL_KEYS)
        if diff:
            raise CheckpointError(
                f"{source} was written with another config (differs in: {', '.join(diff)}). Use another "
                "out= for the new config, or resume=false to start over in this folder.")
        try:
            self.generator.load_state_dict(state["generator"])
            self.d_pose.load_state_dict(state["d_pose"])
            self.d_app.load_state_dict(state["d_appearance"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_dp.load_state_dict(state["opt_d_pose"])
            self.opt_da.load_state_dict(state["opt_d_appearance"])
            for sched, s in zip(self.schedulers, state["schedulers"]):
                sched.load_state_dict(s)
            self.pool_pose.load_state_dict(state["pool_pose"], self.device)
            self.pool_app.load_state_dict(state["pool_appearance"], self.device)
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{source} does not match this model: {str(exc).splitlines()[0]}") from exc
        set_rng_state(state["rng"], self.device)
        self.iteration = int(state["iteration"])

    def start_from_imported(self, state: dict[str, Any], source: Path) -> None:
        """Start from an imported checkpoint (``pona_model.import_checkpoint.imported_state``): the networks
        it holds, optimisers and history pools fresh (the authors save no optimiser state either), the
        schedule at the recorded iteration. The networks' configs must match; data and run settings may
        differ. Here rather than beside the import command, which would make a module cycle."""
        mine, theirs = to_dict(self.config), state["config"]
        diff = [k for k in ("generator", "discriminator") if mine[k] != theirs.get(k)]
        if diff:
            raise CheckpointError(f"{source} holds imported weights for another {' and '.join(diff)} config: train "
                                  "with the preset and keys it was imported with")
        try:
            self.generator.load_state_dict(state["generator"])
            for key, net in (("d_pose", self.d_pose), ("d_appearance", self.d_app)):
                if key in state:
                    net.load_state_dict(state[key])
        except RuntimeError as exc:
            raise CheckpointError(f"{source} does not match this model: {str(exc).splitlines()[0]}") from exc
        self.iteration = int(state["iteration"])
        if self.iteration:
            with warnings.catch_warnings():  # "step() before optimizer.step()": deliberate, nothing is skipped
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                for sched in self.schedulers:  # LambdaLR sets lr from last_epoch on its next step
                    sched.last_epoch = self.iteration - 1
                    sched.step()
        absent = [k for k in ("d_pose", "d_appearance") if k not in state]
        log.info("starting from imported weights %s at iteration %d%s", source, self.iteration,
                 f" (fresh {', '.join(absent)})" if absent else "")

    def save(self) -> Path:
        path = self.out / CHECKPOINT_NAME
        save_checkpoint(path, self.state_dict())
        return path

    # ------------------------------------------------------------------ one iteration
    def _autocast(self):
        return autocast(self.device, self.dtype)

    def _layout(self, t: torch.Tensor) -> torch.Tensor:
        return t.contiguous(memory_format=self.memory_format)

    def _set_requires_grad(self, nets: tuple[nn.Module, ...], flag: bool) -> None:
        for net in nets:
            net.requires_grad_(flag)

    def step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One iteration: G update, then D_A, then D_P (the authors' order)."""
        cfg = self.config.loss
        dev = self.device
        cond = self._layout(batch["condition"].to(dev, non_blocking=True))
        target = self._layout(batch["target"].to(dev, non_blocking=True))
        gen_cfg = self.config.generator
        pose_c = self._layout(generator_pose_maps(gen_cfg, batch["kp_condition"].to(dev)))
        pose_t = self._layout(generator_pose_maps(gen_cfg, batch["kp_target"].to(dev)))
        gan_on = self.iteration >= cfg.gan_start

        # --- generator
        self._set_requires_grad((self.d_pose, self.d_app), False)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            fake = self.generator(cond, torch.cat([pose_c, pose_t], 1))
            if gan_on:
                g_pose = gan_loss(self.d_pose(torch.cat([fake, pose_t], 1)), True, cfg.gan_mode)
                g_app = gan_loss(self.d_app(torch.cat([fake, cond], 1)), True, cfg.gan_mode)
            else:  # L1 warm-up (loss.gan_start): the GAN terms are not computed, the Ds still learn
                g_pose = g_app = fake.new_zeros((), dtype=torch.float32)
            l1 = body_weighted_l1(fake.float(), target.float(), pose_t, cfg.body_l1_weight)
            per = self.perceptual(fake, target) if self.perceptual is not None else fake.new_zeros(())
            loss_g = (cfg.lambda_l1 * l1 + cfg.lambda_perceptual * per
                      + cfg.lambda_gan * (g_pose + g_app) / 2)
        loss_g.backward()
        self.opt_g.step()

        # --- discriminators (appearance first, then pose), on pooled fakes
        self._set_requires_grad((self.d_pose, self.d_app), True)
        fake = fake.detach()
        d_losses = {}
        for name, net, opt, pool, real_in, fake_in in (
            ("d_appearance", self.d_app, self.opt_da, self.pool_app,
             torch.cat([target, cond], 1), torch.cat([fake, cond], 1)),
            ("d_pose", self.d_pose, self.opt_dp, self.pool_pose,
             torch.cat([target, pose_t], 1), torch.cat([fake, pose_t], 1)),
        ):
            opt.zero_grad(set_to_none=True)
            fake_in = pool.query(fake_in)
            with self._autocast():
                loss_d = cfg.lambda_gan * 0.5 * (gan_loss(net(real_in), True, cfg.gan_mode)
                                                  + gan_loss(net(fake_in), False, cfg.gan_mode))
            loss_d.backward()
            opt.step()
            d_losses[name] = loss_d.detach()

        for sched in self.schedulers:
            sched.step()
        losses = torch.stack([loss_g.detach(), l1.detach(), per.detach(), g_pose.detach(), g_app.detach(),
                              d_losses["d_appearance"], d_losses["d_pose"]]).float().cpu()
        values = dict(zip(("g_total", "g_l1", "g_perceptual", "g_gan_pose", "g_gan_appearance",
                           "d_appearance", "d_pose"), losses.tolist()))
        if not torch.isfinite(losses).all():
            bad = ", ".join(f"{k}={v}" for k, v in values.items() if not torch.isfinite(torch.tensor(v)))
            raise TrainingDiverged(f"iteration {self.iteration + 1}: non-finite loss ({bad}); the last good "
                                   f"checkpoint is {self.out / CHECKPOINT_NAME}")
        return values

    # ------------------------------------------------------------------ the run
    def _sample_batch(self) -> dict[str, Any] | None:
        d = self.config.data
        paths = [d.path(p) for p in (d.sample_images, d.sample_annotations, d.sample_pairs)]
        if not all(p.exists() for p in paths):
            paths = [d.path(p) for p in (d.images, d.annotations, d.pairs)]
            ds = self._dataset(d.images, d.annotations, d.pairs)
        else:
            ds = self._dataset(d.sample_images, d.sample_annotations, d.sample_pairs)
        n = min(self.config.sample_count, len(ds))
        items = [ds[i] for i in range(n)]
        return {k: (torch.stack([it[k] for it in items]) if torch.is_tensor(items[0][k]) else [it[k] for it in items])
                for k in items[0]}

    def _write_samples(self, batch: dict[str, Any]) -> Path:
        self.generator.eval()
        with torch.no_grad():
            cond = batch["condition"].to(self.device)
            pair = generator_pose_pair(self.config.generator, batch["kp_condition"].to(self.device),
                                       batch["kp_target"].to(self.device))
            with self._autocast():
                fake = self.generator(self._layout(cond), self._layout(pair)).float().cpu()
        self.generator.train()
        path = self.out / "samples" / f"iter_{self.iteration:07d}.png"
        save_sample_grid(path, batch["condition"], batch["kp_target"], fake, batch["target"])
        return path

    def _log(self, record: dict[str, Any]) -> None:
        append_record(self.out / LOG_NAME, record)

    def _truncate_log(self) -> None:
        """Drop log records past the resumed iteration: they belong to the lost tail of the old run."""
        truncate_records(self.out / LOG_NAME, "iteration", self.iteration)

    def fit(self, max_iterations: int | None = None) -> dict[str, Any]:
        """Train until the schedule ends (or ``max_iterations`` more iterations, for interrupted-run
        tests and quick checks); returns a summary with the last logged losses. ``threads`` applies
        while it trains."""
        with torch_threads(self.config.threads), deferred_interrupt() as self._interrupted:
            return self._fit(max_iterations)

    def _fit(self, max_iterations: int | None) -> dict[str, Any]:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        ckpt = self.out / CHECKPOINT_NAME
        if ckpt.exists():
            if not cfg.resume:
                raise CheckpointError(f"{ckpt} exists; pass resume=true to continue it, or choose another out=")
            self.load_state_dict(load_checkpoint(ckpt, GENERATOR_FORMAT, map_location=self.device), ckpt)
            log.info("resumed %s at iteration %d / %d", ckpt, self.iteration, self.total_iterations)
        self._truncate_log()
        atomic_write_text(self.out / "config.json", json.dumps(to_dict(cfg), indent=2) + "\n")
        dataset = self._dataset(cfg.data.images, cfg.data.annotations, cfg.data.pairs)
        stop = self.total_iterations if max_iterations is None else min(self.total_iterations,
                                                                        self.iteration + max_iterations)
        sampler = IterationBatches(len(dataset), cfg.schedule.batch_size, cfg.seed, self.iteration, stop)
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                            pin_memory=self.device.type == "cuda", persistent_workers=False,
                            multiprocessing_context=loader_context(cfg.num_workers),
                            generator=torch.Generator())  # keeps the global RNG untouched by the loader
        samples = self._sample_batch() if cfg.sample_every > 0 else None
        log.info("training %s for iterations %d..%d of %d on %s in %s (%d pairs; perceptual loss %s); writing to %s",
                 ARCH_NAMES[cfg.generator.arch], self.iteration, stop, self.total_iterations, self.device, precision_name(self.dtype),
                 len(dataset), self.perceptual_note, self.out)
        self._log({"event": "start", "iteration": self.iteration, "device": str(self.device),
                   "perceptual": self.perceptual_note,
                   "precision": precision_name(self.dtype), "channels_last": self.config.channels_last})
        self.generator.train(), self.d_pose.train(), self.d_app.train()
        last: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = tqdm(loader, total=len(sampler), initial=0, desc=f"{ARCH_NAMES[cfg.generator.arch]} training", unit="it", dynamic_ncols=True)
        for batch in bar:
            lr = self.opt_g.param_groups[0]["lr"]  # the rate this iteration trains with
            last = self.step(batch)
            self.iteration += 1
            bar.set_postfix(l1=f"{last['g_l1']:.3f}", d_p=f"{last['d_pose']:.3f}", refresh=False)
            if self.iteration % cfg.log_every == 0 or self.iteration == stop:
                self._log({"iteration": self.iteration, "lr": lr,
                           "seconds": round(time.perf_counter() - t0, 3), **last})
            if samples is not None and self.iteration % cfg.sample_every == 0:
                self._write_samples(samples)
            if self.iteration % cfg.checkpoint_every == 0 and self.iteration != stop:
                self.save()
            if self._interrupted():  # Ctrl-C: keep this iteration's work, then stop
                bar.close()
                raise KeyboardInterrupt(f"stopped at iteration {self.iteration}; checkpoint {self.save()}")
        bar.close()
        path = self.save()
        if samples is not None:
            self._write_samples(samples)
        done = self.iteration >= self.total_iterations
        log.info("%s at iteration %d; checkpoint %s", "finished" if done else "stopped", self.iteration, path)
        return {"iteration": self.iteration, "finished": done, "checkpoint": str(path), "losses": last,
                "seconds": time.perf_counter() - t0}


def config_from_checkpoint(state: dict[str, Any]) -> TrainConfig:
    """Rebuild the typed config a checkpoint was trained with (the stored dict is plain data)."""
    return runtime_config.config_from_checkpoint(TrainConfig, state)

