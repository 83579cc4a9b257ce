"""The PoNA training loop: one G step, then D_A, then D_P, per iteration (docs/architecture.md, "Losses and training").

Everything a resumed run needs to reproduce the uninterrupted one is in the checkpoint: weights,
optimisers, schedulers, history pools, the global RNG state (dropout) and the iteration. Training
pairs for iteration i are drawn from a generator seeded by (seed, i), so the data order needs no
state at all and does not depend on the number of loader workers. The run folder, checkpoints, resume
checks, Ctrl-C, periodic checkpoints and the log are the training engine's (``runtime.training``);
this module holds the models, the step and the state only the generator has.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from pona_model.checkpoint_tags import GENERATOR_FORMAT
from pona_model.generator import generator_pose_maps, generator_pose_pair
from pona_model.history_pool import HistoryPool
from pona_model.identity_loss import IdentityLoss, identity_trunk
from pona_model.init_weights import StartWeights, locate_start, read_start
from pona_model.losses import (
    PerceptualLoss,
    RandomPerceptualLoss,
    find_vgg19_weights,
    gan_loss,
    vgg19_missing_message,
)
from pona_model.models import build_discriminators, build_generator
from pona_model.pair_dataset import PairDataset
from pona_model.sample_grid import save_sample_grid
from pona_model.train_config import TrainConfig
from poseformats.annotations import read_annotations, read_pairs
from runtime import config as runtime_config
from runtime.config import to_dict
from runtime.device import autocast, loader_context
from runtime.errors import CheckpointError, ConfigError, MissingWeightsError, TrainingDiverged
from runtime.training import CHECKPOINT_NAME, Step, TrainingRun

log = logging.getLogger(__name__)

ARCH_NAMES = {"pona": "PoNA", "patn": "PATN"}  # for the log and the progress bar

__all__ = ["IterationBatches", "Trainer", "config_from_checkpoint", "linear_decay"]


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
    """``Trainer(config).fit()`` trains (or resumes) the generator run in ``config.out``, on the training
    engine (``self.run``)."""

    unit = "iteration"  # the engine's names for a step: in messages, the progress bar and the log
    log_key = "iteration"

    def __init__(self, config: TrainConfig, check_data: bool = True) -> None:
        """``check_data=False`` builds the models and optimisers without a dataset (benchmarks)."""
        self.config = config
        # amp=false forces fp32; both keys set the precision, which resume checks compare as resolved
        self.run = TrainingRun(config, GENERATOR_FORMAT, precision=config.precision if config.amp else "fp32",
                               precision_keys=("precision", "amp"))
        self.out, self.device, self.dtype = self.run.out, self.run.device, self.run.dtype
        self.memory_format = self.run.memory_format
        self.total_iterations = config.schedule.iterations()
        if check_data:
            self._check_data_paths()
        if config.init:  # a missing or altered start fails here, before any model is built
            locate_start(config.init, config.generator.arch)
        self.init_record: dict[str, Any] | None = None  # what the networks started from (init=), if not at random

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
        self.identity, self.identity_note = self._identity_loss()
        self.iteration = 0
        self._samples: dict[str, Any] | None = None  # the pairs of the sample grids, once a fit has read them
        self._last: dict[str, float] = {}  # the last step's losses

    # ------------------------------------------------------------------ set-up
    def _check_data_paths(self) -> None:
        d = self.config.data
        for label, rel in (("data.images", d.images), ("data.annotations", d.annotations), ("data.pairs", d.pairs)):
            p = d.path(rel)
            if not p.exists():
                raise FileNotFoundError(
                    f"{label} = {p} does not exist (data.root = {d.root or '(unset)'}). For the project's "
                    "generated data run `python -m synthmarket out=data/synthmarket` first; for Market-1501 "
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

    def _identity_loss(self) -> tuple[IdentityLoss | None, str]:
        cfg = self.config.loss
        if cfg.lambda_identity == 0:
            return None, "off: lambda_identity = 0"
        if self.config.schedule.batch_size < 2:
            raise ConfigError("loss.lambda_identity > 0 centres features on the batch's mean and needs "
                              "schedule.batch_size >= 2; raise the batch or set loss.lambda_identity=0")
        trunk, note = identity_trunk(cfg.identity_net)
        return IdentityLoss(trunk).to(self.device, memory_format=self.memory_format), note

    def _dataset(self, images: str, annotations: str, pairs: str) -> PairDataset:
        d = self.config.data
        keypoints = read_annotations(d.path(annotations))
        return PairDataset(d.path(images), keypoints, read_pairs(d.path(pairs), known_names=keypoints),
                           image_size=tuple(self.config.generator.image_size))

    # ------------------------------------------------------------------ checkpoints
    @property
    def position(self) -> int:
        return self.iteration

    @property
    def total_steps(self) -> int:
        return self.total_iterations

    @property
    def desc(self) -> str:
        return f"{ARCH_NAMES[self.config.generator.arch]} training"

    def state_dict(self) -> dict[str, Any]:
        """The whole checkpoint (the engine adds format, config, precision and RNG states to ``own_state``)."""
        return self.run.state(self)

    def own_state(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration, "total_iterations": self.total_iterations,
            **self.start_record(),
            "generator": self.generator.state_dict(), "d_pose": self.d_pose.state_dict(),
            "d_appearance": self.d_app.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d_pose": self.opt_dp.state_dict(),
            "opt_d_appearance": self.opt_da.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "pool_pose": self.pool_pose.state_dict(), "pool_appearance": self.pool_app.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], source: Path) -> None:
        """Continue from a checkpoint: the engine's resume checks, this trainer's state, the RNG states."""
        self.run.restore(self, state, Path(source))

    def check_resume(self, state: dict[str, Any], source: Path) -> dict[str, Any]:
        return state["config"]  # nothing beyond the engine's checks

    def load_own_state(self, state: dict[str, Any], source: Path) -> None:
        if "imported" in state:  # weights from pona_model.import_checkpoint, no optimiser state
            return self.start_from_imported(state, source)
        self.init_record = state.get("init")
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
        return self.run.save(self)

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
        d_on = cfg.lambda_gan > 0  # with no GAN term the Ds' loss is 0: running them would change nothing
        gan_on = d_on and self.iteration >= cfg.gan_start

        # --- generator
        self._set_requires_grad((self.d_pose, self.d_app), False)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            fake = self.generator(cond, torch.cat([pose_c, pose_t], 1))
            if gan_on:
                g_pose = gan_loss(self.d_pose(torch.cat([fake, pose_t], 1)), True, cfg.gan_mode)
                g_app = gan_loss(self.d_app(torch.cat([fake, cond], 1)), True, cfg.gan_mode)
            else:  # L1 warm-up (loss.gan_start: the Ds still learn) or no GAN at all (lambda_gan = 0)
                g_pose = g_app = fake.new_zeros((), dtype=torch.float32)
            l1 = body_weighted_l1(fake.float(), target.float(), pose_t, cfg.body_l1_weight)
            per = self.perceptual(fake, target) if self.perceptual is not None else fake.new_zeros(())
            ident = self.identity(fake, target) if self.identity is not None else fake.new_zeros((), dtype=torch.float32)
            loss_g = (cfg.lambda_l1 * l1 + cfg.lambda_perceptual * per
                      + cfg.lambda_gan * (g_pose + g_app) / 2 + cfg.lambda_identity * ident)
        loss_g.backward()
        self.opt_g.step()

        # --- discriminators (appearance first, then pose), on pooled fakes
        self._set_requires_grad((self.d_pose, self.d_app), True)
        fake = fake.detach()
        d_losses = {name: fake.new_zeros((), dtype=torch.float32) for name in ("d_appearance", "d_pose")}
        for name, net, opt, pool, real_in, fake_in in (
            ("d_appearance", self.d_app, self.opt_da, self.pool_app,
             torch.cat([target, cond], 1), torch.cat([fake, cond], 1)),
            ("d_pose", self.d_pose, self.opt_dp, self.pool_pose,
             torch.cat([target, pose_t], 1), torch.cat([fake, pose_t], 1)),
        ) if d_on else ():
            opt.zero_grad(set_to_none=True)
            fake_in = pool.query(fake_in)
            with self._autocast():
                loss_d = cfg.lambda_gan * 0.5 * (gan_loss(net(real_in), True, cfg.gan_mode)
                                                  + gan_loss(net(fake_in), False, cfg.gan_mode))
            loss_d.backward()
            opt.step()
            d_losses[name] = loss_d.detach()

        for sched in self.schedulers if d_on else self.schedulers[:1]:  # an idle D's optimiser never steps
            sched.step()
        named = {"g_total": loss_g, "g_l1": l1, "g_perceptual": per, "g_gan_pose": g_pose, "g_gan_appearance": g_app,
                 **({"g_identity": ident} if self.identity is not None else {}), **d_losses}
        losses = torch.stack([v.detach().float() for v in named.values()]).cpu()
        values = dict(zip(named, losses.tolist()))
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

    def fit(self, max_iterations: int | None = None) -> dict[str, Any]:
        """Train until the schedule ends (or ``max_iterations`` more iterations, for interrupted-run
        tests and quick checks), continuing from the folder's checkpoint; returns a summary with the
        last logged losses. ``threads`` applies while it trains."""
        self._last = {}
        self.begin()
        return self.run.fit(self, max_iterations)

    def begin(self) -> None:
        """Load the ``init=`` weights when this run has not started yet (no checkpoint in ``out``, none
        restored): ``fit`` calls it, and so may a caller that scores the start before training."""
        cfg = self.config
        if cfg.init and self.init_record is None and self.iteration == 0 and not self.run.checkpoint_path.exists():
            self.start_from(read_start(cfg.init, cfg.generator, cfg.discriminator, cfg.generator.arch))

    def start_from(self, start: StartWeights) -> None:
        """Fine-tuning's start (``init=``): the networks' weights only, at iteration 0 of this run."""
        self.generator.load_state_dict(start.generator)
        nets = {"d_pose": self.d_pose, "d_appearance": self.d_app}
        for key, state in start.discriminators.items():
            nets[key].load_state_dict(state)
        self.init_record = start.record
        fresh = [k for k in nets if k not in start.discriminators]
        log.info("starting from the weights of %s (sha256 %s...)%s", start.record["spec"], start.record["sha256"][:12],
                 f"; fresh {', '.join(fresh)}" if fresh else "")

    # ------------------------------------------------------------------ the engine's hooks
    def batches(self, stop: int | None) -> Iterator[dict[str, Any]]:
        """The batches of iterations ``iteration .. stop-1``: the pairs of each from (seed, iteration)."""
        cfg = self.config
        stop = self.total_iterations if stop is None else stop
        dataset = self._dataset(cfg.data.images, cfg.data.annotations, cfg.data.pairs)
        sampler = IterationBatches(len(dataset), cfg.schedule.batch_size, cfg.seed, self.iteration, stop)
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                            pin_memory=self.device.type == "cuda", persistent_workers=False,
                            multiprocessing_context=loader_context(cfg.num_workers),
                            generator=torch.Generator())  # keeps the global RNG untouched by the loader
        self._samples = self._sample_batch() if cfg.sample_every > 0 else None
        log.info("training %s for iterations %d..%d of %d on %s in %s (%d pairs; perceptual loss %s; identity term "
                 "%s); writing to %s", ARCH_NAMES[cfg.generator.arch], self.iteration, stop, self.total_iterations,
                 self.device, self.run.precision, len(dataset), self.perceptual_note, self.identity_note, self.out)
        self.generator.train(), self.d_pose.train(), self.d_app.train()
        yield from loader

    def train_step(self, batch: dict[str, Any]) -> Step:
        lr = self.opt_g.param_groups[0]["lr"]  # the rate this iteration trains with
        self._last = self.step(batch)
        self.iteration += 1
        if self._samples is not None and self.iteration % self.config.sample_every == 0:
            self._write_samples(self._samples)
        return Step({"iteration": self.iteration, "lr": lr, **self._last},
                    postfix={"l1": f"{self._last['g_l1']:.3f}", "d_p": f"{self._last['d_pose']:.3f}"})

    def start_record(self) -> dict[str, Any]:
        """What the losses and the start were, for the log's first record and every checkpoint."""
        return {"perceptual": self.perceptual_note,
                **({"identity": self.identity_note} if self.identity is not None else {}),
                **({"init": self.init_record} if self.init_record else {})}

    def after_fit(self) -> None:
        if self._samples is not None:
            self._write_samples(self._samples)

    def summary(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "finished": self.iteration >= self.total_iterations,
                "losses": self._last}


def config_from_checkpoint(state: dict[str, Any]) -> TrainConfig:
    """Rebuild the typed config a checkpoint was trained with (the stored dict is plain data)."""
    return runtime_config.config_from_checkpoint(TrainConfig, state)

