"""data.color_jitter: the re-ID input's colour jitter, off by default and invisible to old caches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.config import load_pipeline_config
from pipelines.stages.train_reid import reid_inputs
from reid.data import train_transform
from reid.train_config import current_keys, load_reid_config


def _image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(40, 215, (64, 32, 3), dtype=np.uint8))


def _draw(color_jitter: float) -> torch.Tensor:
    torch.manual_seed(0)
    return train_transform((64, 32), pad=0, flip=False, color_jitter=color_jitter)(_image())


def test_off_is_the_plain_transform_and_on_changes_the_colours() -> None:
    plain = _draw(0.0)
    torch.manual_seed(0)
    reference = train_transform((64, 32), pad=0, flip=False)(_image())
    assert torch.equal(plain, reference)
    jittered = _draw(0.4)
    assert jittered.shape == plain.shape
    assert float((jittered - plain).abs().mean()) > 0.01  # ignoring the option would leave them equal


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="color_jitter"):
        load_reid_config("data.color_jitter=1.5")


def test_the_fingerprint_holds_the_key_only_when_on() -> None:
    off = reid_inputs(load_pipeline_config().reid)
    on = reid_inputs(load_pipeline_config("reid.data.color_jitter=0.3").reid)
    assert "color_jitter" not in off["data"]  # caches made before the option stay valid
    assert on["data"]["color_jitter"] == 0.3
    assert off != on


def test_a_checkpoint_from_before_the_option_reads_as_off() -> None:
    stored = {"data": {"image_size": [64, 32], "pad": 3}, "seed": 0}
    assert current_keys(stored)["data"]["color_jitter"] == 0.0
    assert current_keys({"data": {"color_jitter": 0.2}})["data"]["color_jitter"] == 0.2
