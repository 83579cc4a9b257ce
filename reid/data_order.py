"""The re-ID training data as a function of the seed and the position alone, so a run resumes at any step.

- Each epoch's batches are drawn once, before the epoch starts, from generators seeded by (seed, epoch):
  torch's for ``RandomSampler`` (the same permutation as before this module), Python's and NumPy's for
  torchreid's ``RandomIdentitySampler``, which draws from the global generators. Those are seeded for
  the draw and put back after it, so the stream dropout draws from is left as it was.
- Each image's augmentation (crop, flip, erasing) draws from torch's and Python's generators seeded by
  (seed, epoch, batch, place in the batch), inside whichever process loads the image and put back
  after it. Neither the number of loader workers nor where a run was cut changes a pixel.

A resumed run rebuilds the epoch's batches and skips those already trained.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from reid.data import train_sampler
from reid.train_config import ReidDataConfig
from runtime.device import loader_context

# 1: the identity sampler drew from the run's global generators and augmentation from the loader's
# (so a run resumed only at an epoch's end, and the loader workers' count changed the pixels); 2: this module.
DATA_ORDER_VERSION = 2

Batch = list[tuple[int, int]]  # (image index, the seed of its augmentation)


def derived_seed(*parts: int) -> int:
    """A 32-bit seed mixed from non-negative integers (seed, epoch, ...), well apart for neighbours."""
    return int(np.random.SeedSequence([p & 0xFFFF_FFFF_FFFF_FFFF for p in parts]).generate_state(1)[0])


@contextlib.contextmanager
def seeded_globals(seed: int) -> Iterator[None]:
    """Python's and NumPy's global generators seeded with ``seed`` inside the block, restored after it."""
    py, npy = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)


def epoch_batches(dataset: Any, data: ReidDataConfig, batch_size: int, seed: int, epoch: int) -> list[Batch]:
    """Epoch ``epoch``'s batches (0-based), the last incomplete one dropped: image indices, each with
    the seed of its augmentation."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    sampler = train_sampler(dataset, data.sampler, batch_size, data.num_instances, generator=generator)
    with seeded_globals(derived_seed(seed, epoch)):
        order = [int(i) for i in sampler]
    batches = []
    for b in range(len(order) // batch_size):
        seeds = np.random.SeedSequence([seed & 0xFFFF_FFFF_FFFF_FFFF, epoch, b]).generate_state(batch_size)
        batches.append(list(zip(order[b * batch_size:(b + 1) * batch_size], (int(s) for s in seeds))))
    return batches


class SeededItems(Dataset):
    """``items[(index, seed)]`` is ``dataset[index]`` with its random transforms drawn from ``seed``; the
    process's own torch and Python generators are left as they were."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        cpu, py = torch.get_rng_state(), random.getstate()
        torch.default_generator.manual_seed(seed)  # the CPU generator the transforms draw from, no other device's
        random.seed(seed)
        try:
            return self.dataset[index]
        finally:
            torch.set_rng_state(cpu)
            random.setstate(py)


def batch_loader(dataset: Any, batches: Sequence[Batch], num_workers: int, pin_memory: bool = False) -> DataLoader:
    """A loader of exactly these batches, in order. Its own generator seeds the workers, so the run's
    global generators are not drawn from (and the workers' seeds do not matter: items seed themselves)."""
    return DataLoader(SeededItems(dataset), batch_sampler=list(batches), num_workers=num_workers,
                      pin_memory=pin_memory, multiprocessing_context=loader_context(num_workers),
                      generator=torch.Generator())
