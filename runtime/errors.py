"""The exceptions more than one package raises or catches, defined once so that re-ID code catching a
training failure does not import the GAN trainer to name it."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config key, value or file that cannot be used; the message says which and how to fix it."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and what to do."""


class MissingWeightsError(FileNotFoundError):
    """Pretrained weights that cannot be downloaded here and were not found locally."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the iteration or epoch and the losses."""
