"""``reid.budget=iterations`` in optimiser steps, counted as the training loader batches the images.

Scaling epochs by image counts is wrong under torchreid's ``RandomIdentitySampler``: it pads an
identity with fewer than K = ``num_instances`` images to K and cuts every identity into chunks of K
(dropping the remainder), then fills each batch with P = batch / K identities' chunks. A reduced set
of 1-3 images per identity thus yields as many chunks as identities, far more batches than its image
count says (p = 0.2 on SynthMarket: 6 batches per epoch x 15 scaled epochs = 90 steps, against the
full set's 16 x 3 = 48). So the budget is the full set's step count, and every training set trains
exactly that many steps, its last pass over the data possibly partial.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reid.market_index import index_market
from reid.train_config import OptimConfig, ReidDataConfig, ReidTrainConfig


def identity_counts(labels: Iterable[int]) -> list[int]:
    """Images per identity, in identity order (``labels``: one identity label per training image)."""
    counts = Counter(int(label) for label in labels)
    return [counts[k] for k in sorted(counts)]


def folder_counts(root: str | Path) -> list[int]:
    """Images per identity of a Market-layout folder's ``bounding_box_train`` (as the trainer reads it:
    distractor and junk images are no identity)."""
    table = index_market(root, splits=("train",), progress=False)
    return identity_counts(table.loc[table["identity"] > 0, "identity"])


def loader_batches(counts: Sequence[int], data: ReidDataConfig, batch_size: int) -> int:
    """Batches one pass of the training loader yields (its ``len``; the last incomplete batch is dropped).

    ``RandomSampler``: every image once, ``n // batch``. ``RandomIdentitySampler``: identity i gives
    ``max(1, n_i // K)`` chunks of K images and a batch takes P = batch / K chunks of distinct
    identities, so ``chunks // P``. Its pass can end a batch or two early (it stops once fewer than P
    identities have chunks left, a random event); the step budget counts steps, not passes, so
    such a pass is made up from the next one."""
    if data.sampler == "RandomIdentitySampler":
        chunks = sum(max(1, n // data.num_instances) for n in counts)
        return chunks // (batch_size // data.num_instances)
    return sum(counts) // batch_size


def budget_steps(counts: Sequence[int], data: ReidDataConfig, optim: OptimConfig) -> int:
    """The optimiser steps of ``optim.epochs`` epochs over the training set with these identity counts."""
    return loader_batches(counts, data, optim.batch_size) * optim.epochs


@dataclass(frozen=True)
class StepSchedule:
    """The schedule of ``budget=iterations``, in optimiser steps: ``steps`` in all, the learning rate
    x ``gamma`` every ``decay_every`` steps, the warm-up over ``warmup_steps``; ``per_pass``: the
    batches one pass over this training set yields."""

    steps: int
    decay_every: int
    warmup_steps: float
    per_pass: int

    @property
    def passes(self) -> int:
        """Passes over this training set that the steps take (the last one possibly partial)."""
        return math.ceil(self.steps / self.per_pass)


def step_schedule(config: ReidTrainConfig, counts: Sequence[int]) -> StepSchedule | None:
    """The schedule this training set runs: None under ``budget=epochs`` (``optim`` as given, per epoch).
    Under ``iterations``: ``budget_steps`` steps (0: this set's own ``optim.epochs`` epochs), with the
    decay and the warm-up at the same fractions of training as ``optim`` puts them."""
    if config.budget == "epochs":
        return None
    o = config.optim
    per_pass = loader_batches(counts, config.data, o.batch_size)
    steps = config.budget_steps or per_pass * o.epochs
    per_epoch = steps / o.epochs  # the reference set's batches per epoch
    return StepSchedule(steps=steps, decay_every=max(1, round(o.step_size * per_epoch)),
                        warmup_steps=o.warmup_epochs * per_epoch, per_pass=max(1, per_pass))
