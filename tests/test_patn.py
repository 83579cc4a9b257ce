"""PATN as the second generator: parameter counts, the PAT block's algebra, config checks, training
with the same trainer (exact resume), generation through the same loader, the summary command."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from pona_model.checkpoint_tags import GENERATOR_FORMAT
from pona_model.generator import Generator, GeneratorConfig
from pona_model.inference import load_generator
from pona_model.models import build_discriminators, build_generator
from pona_model.patn import PATBlock, PATNGenerator
from pona_model.summary import main as summary_main
from pona_model.train_config import DiscriminatorConfig, load_train_config
from pona_model.trainer import Trainer
from runtime.checkpoint import load_checkpoint
from runtime.config import to_dict
from runtime.training import CHECKPOINT_NAME, LOG_NAME
from tests.conftest import TINY_TRAIN

PATN_TINY = [*TINY_TRAIN, "generator.arch=patn", "generator.n_blocks=3"]


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize(("preset", "expected"), [("patn-market1501", 41_365_763), ("patn-deepfashion", 41_358_019)])
def test_authors_parameter_counts(preset, expected):
    cfg = load_train_config(f"preset={preset}")
    with torch.device("meta"):
        g = build_generator(cfg.generator)
    assert isinstance(g, PATNGenerator) and len(g.blocks) == 9
    assert _trainable(g) == expected
    # per part (Market): the encoders and decoder are PoNA's; block 0 reads a C-channel pose code, the rest 2C
    if preset == "patn-market1501":
        assert [_trainable(b) for b in g.blocks] == [2_360_832] + [4_720_640] * 8
        assert (_trainable(g.image_encoder), _trainable(g.pose_encoder), _trainable(g.decoder)) == (
            378_944, 482_432, 378_435)


def test_summary_command_shows_patn(capsys):
    assert summary_main(["preset=patn-market1501", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["arch"] == "patn" and s["generator_params"] == 41_365_763
    assert (s["d_pose_params"], s["d_appearance_params"]) == (3_977_408, 3_930_368)


def test_patn_discriminators_have_no_spectral_norm_and_pona_ones_do():
    d_cfg = DiscriminatorConfig(ndf=8, n_res_blocks=1)
    for arch, spectral in (("patn", False), ("pona", True)):
        for d in build_discriminators(GeneratorConfig(arch=arch, ngf=8, image_size=(32, 16)), d_cfg):
            convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
            assert len(convs) == 5 and all(parametrize.is_parametrized(c, "weight") == spectral for c in convs)


def test_pat_block_is_a_pose_gated_residual():
    """x' = x + image_stream(x) * sigmoid(pose_stream(p)); p' = cat(pose_stream(p), x')."""
    torch.manual_seed(0)
    block = PATBlock(8, 16, "batch").eval()
    x, p = torch.randn(2, 8, 6, 4), torch.randn(2, 16, 6, 4)
    with torch.no_grad():
        new_x, new_p = block(x, p)
        pose = block.pose_stream(p)
        torch.testing.assert_close(new_x, x + block.image_stream(x) * torch.sigmoid(pose))
        assert new_p.shape == (2, 16, 6, 4)
        torch.testing.assert_close(new_p, torch.cat((pose, new_x), 1))
    # a pose stream driven far negative closes the gate: the block passes the image code through
    block = PATBlock(8, 16, "instance").eval()  # instance norm: the last pose conv has a bias
    with torch.no_grad():
        block.pose_stream[-1].weight.zero_()
        block.pose_stream[-1].bias.fill_(-50.0)
        torch.testing.assert_close(block(x, p)[0], x)
    # the target pose reaches the output: a different pose pair gives a different image
    g = build_generator(GeneratorConfig(arch="patn", ngf=8, n_blocks=2, image_size=(32, 16), norm="instance")).eval()
    image = torch.rand(1, 3, 32, 16) * 2 - 1
    with torch.no_grad():
        a, b = g(image, torch.rand(1, 36, 32, 16)), g(image, torch.rand(1, 36, 32, 16))
    assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize(("changes", "message"), [
    ({"arch": "patn", "fusion": "tail"}, "PoNA settings"),
    ({"arch": "patn", "cross_attention": False}, "PoNA settings"),
    ({"arch": "patn", "gate_init": 0.1}, "PoNA settings"),
    ({"arch": "pona", "n_blocks": 9}, r"1\.\.5 for arch=pona"),
    ({"arch": "patn", "n_blocks": 21}, r"1\.\.20 for arch=patn"),
    ({"arch": "stylegan"}, "arch must be one of"),
])
def test_bad_arch_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**changes)


def test_block_dropout_reaches_both_streams_of_every_pat_block():
    g = build_generator(GeneratorConfig(arch="patn", ngf=8, n_blocks=2, image_size=(32, 16), block_dropout=0.2))
    rates = [m.p for m in g.modules() if isinstance(m, nn.Dropout)]
    assert rates == [0.2] * 4
    assert {m.p for m in build_generator(GeneratorConfig(arch="patn", ngf=8, image_size=(32, 16))).modules()
            if isinstance(m, nn.Dropout)} == {0.5}


def test_arch_key_builds_the_named_generator():
    assert type(build_generator(GeneratorConfig(arch="patn", ngf=8, image_size=(32, 16)))) is PATNGenerator
    assert type(build_generator(GeneratorConfig(arch="pona", ngf=8, image_size=(32, 16)))) is Generator


def test_tiny_patn_trains_and_resumes_exactly(pair_data, tmp_path):
    def run(out, *pieces):
        for n in pieces:
            Trainer(load_train_config(*PATN_TINY, f"data.root={pair_data}", f"out={out}")).fit(max_iterations=n)
        records = [json.loads(line) for line in (out / LOG_NAME).read_text().splitlines()]
        return {r["iteration"]: r for r in records if "g_l1" in r}

    straight, pieces = run(tmp_path / "straight", 4), run(tmp_path / "pieces", 2, 2)
    assert sorted(straight) == sorted(pieces) == [1, 2, 3, 4]
    for it in straight:
        for k in ("g_total", "g_l1", "d_appearance", "d_pose"):
            assert straight[it][k] == pytest.approx(pieces[it][k], rel=1e-6, abs=1e-7), (it, k)
    state = load_checkpoint(tmp_path / "pieces" / CHECKPOINT_NAME, GENERATOR_FORMAT)
    assert state["config"]["generator"]["arch"] == "patn"
    assert any(k.startswith("blocks.2.pose_stream") for k in state["generator"])
    assert not any("parametrizations" in k for k in state["d_pose"])
    # the same loader serves PATN checkpoints to generate, evaluate, synthesize and the pipeline
    loaded = load_generator(tmp_path / "pieces" / CHECKPOINT_NAME, "cpu")
    assert isinstance(loaded.generator, PATNGenerator)
    kp = torch.full((1, 18, 2), -1.0)
    kp[0, :4] = torch.tensor([[4.0, 8.0], [10.0, 8.0], [12.0, 4.0], [20.0, 4.0]])
    out = loaded.generate(torch.zeros(1, 3, 32, 16), kp, kp)
    assert out.shape == (1, 3, 32, 16) and torch.isfinite(out).all()


@pytest.mark.parametrize("pona", ["market1501", "deepfashion", "synth"])
def test_patn_presets_differ_from_ponas_only_in_the_generator(pona):
    """PATN's training settings are PoNA's (PoNA inherited them): only the generator and out differ, and
    in the generator only the architecture, its depth and PoNA's own gate_init."""
    a, b = to_dict(load_train_config(f"preset={pona}")), to_dict(load_train_config(f"preset=patn-{pona}"))
    assert {k for k in a if a[k] != b[k]} == {"out", "generator"}
    differ = {k for k in a["generator"] if a["generator"][k] != b["generator"][k]}
    assert {"arch", "n_blocks"} <= differ <= {"arch", "n_blocks", "gate_init"}
    assert (b["generator"]["arch"], b["generator"]["n_blocks"]) == ("patn", 9)
