"""Device and CPU-thread helpers: a stage's thread count must not leak into the next stage."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from pona_model.trainer import Trainer
from reid.trainer import ReidTrainer
from runtime.device import resolve_device, torch_threads
from runtime.training import TrainingRun


def test_torch_threads_sets_and_restores():
    torch.set_num_threads(3)
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 3
    with torch_threads(0):  # 0 leaves the count alone
        assert torch.get_num_threads() == 3

    @torch_threads()
    def sets_its_own():
        torch.set_num_threads(2)
        return torch.get_num_threads()

    assert sets_its_own() == 2 and torch.get_num_threads() == 3
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("a failing stage")
    assert torch.get_num_threads() == 3


@pytest.mark.parametrize("trainer_class", [Trainer, ReidTrainer])
def test_trainers_use_their_threads_only_while_they_train(trainer_class, monkeypatch):
    seen = []
    monkeypatch.setattr(TrainingRun, "_fit", lambda self, *args: seen.append(torch.get_num_threads()) or {})
    trainer = object.__new__(trainer_class)  # both trainers train on the engine, which sets the threads
    trainer.config = SimpleNamespace(threads=1, progress=False, init="")  # no fine-tuning start
    trainer.run = object.__new__(TrainingRun)
    trainer.run.config = trainer.config
    torch.set_num_threads(2)
    trainer.fit()
    assert seen == [1] and torch.get_num_threads() == 2


def test_unavailable_device_is_named():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a device name"):
        resolve_device("gpu0")
