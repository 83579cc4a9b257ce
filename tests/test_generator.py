"""The generator: exact official parameter counts, FLOPs, every paper variant, input checks, overfitting."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pona_model.flops import generator_gflops
from pona_model.generator import Generator, GeneratorConfig

TINY = GeneratorConfig(image_size=(32, 16), ngf=8, n_blocks=1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _meta_generator(**changes: object) -> Generator:
    """Full-size generators for counting: built on the meta device (shapes only, no memory)."""
    with torch.device("meta"):
        return Generator(GeneratorConfig(**changes))


def _inputs(config: GeneratorConfig, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = config.image_size
    return torch.rand(batch, 3, h, w) * 2 - 1, torch.rand(batch, 36, h, w)


@pytest.mark.parametrize(("norm", "n_blocks", "expected"), [
    ("batch", 3, 34_330_444), ("batch", 2, 23_300_233),
    ("instance", 3, 34_329_356), ("instance", 2, 23_299_145),
])
def test_official_parameter_counts(norm: str, n_blocks: int, expected: int) -> None:
    assert _trainable(_meta_generator(norm=norm, n_blocks=n_blocks)) == expected


def test_official_per_part_counts() -> None:
    g = _meta_generator()
    assert [_trainable(b) for b in g.blocks] == [11_030_211] * 3
    assert _trainable(g.image_encoder) == 378_944
    assert _trainable(g.pose_encoder) == 482_432
    assert _trainable(g.decoder) == 378_435


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, 39.2), ({"n_blocks": 2}, 27.5), ({"image_size": (256, 176), "norm": "instance"}, 249.0),
])
def test_forward_gflops_match_spec(changes: dict, expected: float) -> None:
    assert generator_gflops(GeneratorConfig(**changes)) == pytest.approx(expected, rel=0.01)


def test_full_market_generator_runs_on_cpu() -> None:
    g = Generator().eval()
    with torch.inference_mode():
        out = g(*_inputs(g.config, batch=1))
    assert out.shape == (1, 3, 128, 64)


def test_init_follows_spec() -> None:
    g = Generator(GeneratorConfig(ngf=16))
    conv_weights = torch.cat([m.weight.flatten() for m in g.modules()
                              if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert conv_weights.std().item() == pytest.approx(0.02, rel=0.05)
    assert conv_weights.mean().abs().item() < 1e-3
    bn = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bn and all(m.bias.abs().max() == 0 for m in bn)
    assert torch.cat([m.weight for m in bn]).sub(1).abs().max() < 0.15
    assert all(p.abs().max() == 0 for name, p in g.named_parameters() if name.endswith(("gamma", "beta")))
    # Blocks always use non-affine instance norm, whatever the global norm (docs/architecture.md).
    block_norms = [m for m in g.blocks.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d))]
    assert block_norms and all(isinstance(m, nn.InstanceNorm2d) and not m.affine for m in block_norms)


def test_pose_acts_only_through_attention_whose_gamma_starts_at_zero() -> None:
    # gamma = 0 makes both attentions residual identities, so at init the output ignores the pose;
    # opening the cross-modal gate lets the pose in (eq. 7: C_t = gamma * o_t + conv_I(C_{t-1})).
    g = Generator(TINY).eval()
    image, pose = _inputs(TINY)
    with torch.no_grad():
        out = g(image, pose)
        assert torch.equal(out, g(image, torch.rand_like(pose)))
        g.blocks[0].cross_attention.gamma.fill_(1.0)
        assert not torch.allclose(g(image, pose), g(image, torch.rand_like(pose)))


_VARIANTS = [dataclasses.replace(TINY, n_blocks=n) for n in range(1, 6)] + [
    dataclasses.replace(TINY, n_blocks=2, fusion=f, self_attention=sa, cross_attention=ca, norm=norm)
    for (f, sa, ca), norm in zip(itertools.product(("head", "middle", "tail", "none"), (True, False),
                                                   (True, False)), itertools.cycle(("batch", "instance")))
]


@pytest.mark.parametrize("config", _VARIANTS, ids=lambda c: (
    f"{c.n_blocks}blk-{c.fusion}-sa{int(c.self_attention)}-cro{int(c.cross_attention)}-{c.norm}"))
def test_every_variant_builds_and_runs(config: GeneratorConfig) -> None:
    g = Generator(config).train()
    for name, p in g.named_parameters():  # open the attention gates so every path is exercised
        if name.endswith(("gamma", "beta")):
            nn.init.constant_(p, 0.5)
    out = g(*_inputs(config))
    assert out.shape == (2, 3, 32, 16)
    assert torch.isfinite(out).all() and out.abs().max() <= 1
    out.mean().backward()


def test_wrong_inputs_raise_a_clear_error() -> None:
    g = Generator(TINY)
    image, pose = _inputs(TINY)
    with pytest.raises(ValueError, match=r"pose_pair must have shape \(B, 36, 32, 16\).*\(2, 18, 32, 16\)"):
        g(image, pose[:, :18])
    with pytest.raises(ValueError, match=r"condition_image must have shape \(B, 3, 32, 16\).*64, 32\)"):
        g(F.interpolate(image, scale_factor=2), pose)
    with pytest.raises(ValueError, match="condition_image"):
        g(image[0], pose)
    with pytest.raises(ValueError, match="batch sizes differ"):
        g(image, pose[:1])


@pytest.mark.parametrize(("field", "value"), [
    ("image_size", (30, 16)), ("image_size", (32,)), ("image_size", 32), ("ngf", 7), ("n_blocks", 0),
    ("n_blocks", 6), ("norm", "group"), ("fusion", "side"), ("self_attention", "yes"),
])
def test_config_errors_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**{field: value})


def test_config_fields_are_documented_and_lists_become_tuples() -> None:
    assert all(f.metadata.get("help") for f in dataclasses.fields(GeneratorConfig))
    assert GeneratorConfig(image_size=[256, 176]).image_size == (256, 176)


def test_tiny_generator_overfits_one_batch() -> None:
    config = dataclasses.replace(TINY, norm="instance")
    g = Generator(config).train()
    image, pose = _inputs(config, batch=4)
    # Smooth random targets (bilinear from 8 x 4): image-like, unlike per-pixel noise.
    target = F.interpolate(torch.rand(4, 3, 8, 4) * 2 - 1, size=config.image_size, mode="bilinear")
    opt = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(300):
        loss = F.l1_loss(g(image, pose), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < losses[0] / 5
    with torch.no_grad():
        assert F.l1_loss(g.eval()(image, pose), target).item() < losses[0] / 5
