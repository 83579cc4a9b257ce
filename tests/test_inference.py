"""Loading a trained generator and generating: the API, the command, resumability, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pona_model.generate import main as generate_main
from pona_model.generate import output_name
from pona_model.inference import load_generator
from poseformats.annotations import read_annotations, read_pairs
from runtime.errors import CheckpointError


def test_loaded_generator_matches_the_trained_weights(trained):
    model = load_generator(trained, "cpu")
    assert model.image_size == (32, 16) and model.iteration == 2 and not model.generator.training
    assert len(model.sha256) == 64
    state = torch.load(trained, weights_only=True)
    for k, v in model.generator.state_dict().items():
        assert torch.equal(v, state["generator"][k]), k
    cond = torch.rand(3, 3, 32, 16) * 2 - 1
    kp = torch.full((3, 18, 2), -1, dtype=torch.long)
    kp[:, 0] = torch.tensor([5, 8])
    out = model.generate(cond, kp, kp)
    assert out.shape == (3, 3, 32, 16) and out.abs().max() <= 1
    assert torch.equal(out, model.generate(cond, kp, kp))  # eval mode: no dropout, deterministic


def test_generate_images_resizes_in_and_out(trained):
    model = load_generator(trained, "cpu")
    image = np.random.default_rng(0).integers(0, 256, (64, 32, 3), dtype=np.uint8)
    kp = np.full((18, 2), -1)
    kp[1] = (20, 16)
    [out] = model.generate_images([image], [kp], [kp], target_sizes=[(128, 64)])
    assert out.shape == (128, 64, 3) and out.dtype == np.uint8


def test_generate_command_writes_one_image_per_pair_and_resumes(trained, pair_data, tmp_path, capsys):
    out = tmp_path / "generated"
    args = [f"checkpoint={trained}", f"images={pair_data / 'bounding_box_train'}",
            f"annotations={pair_data / 'market-annotation-train.csv'}",
            f"pairs={pair_data / 'market-pairs-train.csv'}", f"out={out}", "vis=true", "num_workers=0",
            "batch_size=5"]
    assert generate_main(args) == 0
    pairs = read_pairs(pair_data / "market-pairs-train.csv")
    expected = {f"{output_name(a, b)}.png" for a, b in zip(pairs["from"], pairs["to"])}
    assert {p.name for p in out.glob("*.png")} == expected
    assert len(list(out.glob("*_vis.jpg"))) == len(expected)
    first = min(expected)
    assert Image.open(out / first).size == (16, 32)
    assert Image.open(out / first.replace(".png", "_vis.jpg")).size == (16 * 5, 32)
    stamp = (out / first).stat().st_mtime_ns
    assert generate_main(args) == 0  # rerun: nothing left to do, nothing rewritten
    assert (out / first).stat().st_mtime_ns == stamp
    assert len(read_annotations(pair_data / "market-annotation-train.csv")) == 9


def test_generate_command_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 10)
    assert generate_main([f"checkpoint={bad}", "images=x", "annotations=y", "pairs=z", "out=o"]) == 1
    assert "is not a readable checkpoint" in capsys.readouterr().err
    assert generate_main(["out=o"]) == 2
    assert "set checkpoint=..., images=..." in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "missing.pt", "cpu")


def test_generate_images_in_one_batch_equals_one_image_at_a_time(trained):
    model = load_generator(trained, "cpu", precision="fp32")
    rng = np.random.default_rng(0)
    sizes = [(64, 32), (40, 20), (64, 32), (32, 16)]  # mixed stored sizes are resized group by group
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    kps = [np.stack([rng.integers(0, h, 18), rng.integers(0, w, 18)], -1) for h, w in sizes]
    targets = [(48, 24), (64, 32), (40, 20), (48, 24)]
    batched = model.generate_images(images, kps, kps, target_sizes=targets)
    for i in range(len(images)):
        alone = model.generate_images([images[i]], [kps[i]], [kps[i]], target_sizes=[targets[i]])[0]
        assert batched[i].shape == (*targets[i], 3)
        np.testing.assert_array_equal(batched[i], alone)
