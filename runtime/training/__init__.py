"""The resumable-training engine of every trainer (generator, PATN, re-ID, pretraining).

- ``settings``: ``RunSettings``, the keys every training config shares (out, seed, device, precision,
  channels_last, threads, resume, checkpoint_every, log_every, num_workers), with one help text each.
- ``engine``: ``TrainingRun``, the run folder, checkpoints, resume checks, the loop with its log,
  periodic checkpoints, Ctrl-C and progress bar; ``Trainable``, what a trainer gives it.
- ``interrupt``: Ctrl-C held until the step ends.
"""

from runtime.training.engine import CHECKPOINT_NAME, CONFIG_NAME, LOG_NAME, Step, Trainable, TrainingRun
from runtime.training.interrupt import deferred_interrupt
from runtime.training.settings import RunSettings, setting

__all__ = ["CHECKPOINT_NAME", "CONFIG_NAME", "LOG_NAME", "RunSettings", "Step", "Trainable", "TrainingRun",
           "deferred_interrupt", "setting"]
