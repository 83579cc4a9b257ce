"""The authors' checkpoint layouts (PoNA: Zhangjinso/PoNA; PATN: tengteng95/Pose-Transfer) and the
conversion between them and this project's modules, by name (docs/checkpoint-formats.md).

Every tensor is matched by what its module does in the authors' forward pass (``conv`` is the first
image residual unit, ``conv2`` the second, ``dconv`` the residual pose unit, ...), never by position,
so two units of equal shape cannot trade places. Module indices inside the Sequentials are the same
on both sides (this project builds them in the authors' order), so a name translates by its prefix.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from pona_model.generator import GeneratorConfig

# Generator: our top-level module -> the authors', in the authors' registration order.
TOP_LEVEL = (("image_encoder", "stream1_down"), ("pose_encoder", "stream2_down"), ("blocks", "att"),
             ("decoder", "stream1_up"))
# Inside one block: our sub-module -> the authors', in the authors' registration order.
BLOCK_UNITS = {
    "pona": (
        ("cross_attention.gamma", "gamma"),  # the cross-modal attention's gate (eq. 7)
        ("cross_attention.query", "query_conv"),  # from the new pose code
        ("cross_attention.key", "key_conv"),  # from the new pose code
        ("cross_attention.value", "value_conv"),  # from the image code
        ("image_convs.0.body", "conv.conv"),  # first image residual unit C -> C
        ("pose_a.body", "dconv.conv"),  # pose residual unit 2C -> 2C
        ("image_convs.1.body", "conv2.conv"),  # second image residual unit C -> C
        ("pose_b.body", "dconv2.conv"),  # pose unit 2C -> C, no residual: the new pose code
        ("self_attention.gamma", "att2.gamma"),  # self-attention on cat(x, p)
        ("self_attention.beta", "att2.beta"),
        ("self_attention.query", "att2.query_conv"),
        ("self_attention.key", "att2.key_conv"),
        ("self_attention.value", "att2.value_conv"),
    ),
    "patn": (
        ("image_stream", "conv_block_stream1"),  # conv 1, norm 2, conv 6, norm 7
        ("pose_stream", "conv_block_stream2"),  # conv 1, norm 2, conv 6 (the attention mask's logits)
    ),
}
WRAPPER_PREFIX = "model."  # the authors save the wrapper network: every generator key starts with it
RUNNING_STATS = ("running_mean", "running_var")
# Spectral norm: torch.nn.utils.spectral_norm (the authors' PyTorch) -> torch.nn.utils.parametrizations.
SPECTRAL_NAMES = (("weight_orig", "parametrizations.weight.original"), ("weight_u", "parametrizations.weight.0._u"),
                  ("weight_v", "parametrizations.weight.0._v"))


class LayoutError(ValueError):
    """A state dict that does not fit the configured model; the message names the first key and the fix."""


@dataclass
class Converted:
    """Our state dict converted from an authors' file, with what was adjusted on the way."""

    state_dict: dict[str, Tensor]
    notes: list[str] = field(default_factory=list)


def _split_block(name: str) -> tuple[int, str] | None:
    m = re.fullmatch(r"(\d+)\.(.+)", name)
    return (int(m.group(1)), m.group(2)) if m else None


def _unit(arch: str, inner: str) -> tuple[int, str, str]:
    """(rank, our prefix, authors' prefix) of the block unit ``inner`` (a key inside one block) belongs to."""
    for rank, (ours, theirs) in enumerate(BLOCK_UNITS[arch]):
        if inner == ours or inner.startswith(ours + "."):
            return rank, ours, theirs
    raise LayoutError(f"{inner!r} has no counterpart in the authors' {arch} block: the authors' code builds only "
                      "the paper's model (fusion=head, self_attention=true, cross_attention=true)")


def generator_key_to_authors(name: str, arch: str) -> str:
    """Our generator key -> the authors' (without the ``model.`` prefix)."""
    top, _, rest = name.partition(".")
    theirs = dict(TOP_LEVEL)[top]
    if top != "blocks":
        return f"{theirs}.{rest}"
    k, inner = _split_block(rest)
    _, ours, their_unit = _unit(arch, inner)
    return f"att.{k}.{their_unit}{inner[len(ours):]}"


def _generator_rank(name: str, arch: str, position: int) -> tuple[int, int, int, int]:
    """Where the authors' state dict lists our key ``name``: encoders, blocks (by unit), decoder."""
    top, _, rest = name.partition(".")
    top_rank = [t for t, _ in TOP_LEVEL].index(top)
    if top != "blocks":
        return top_rank, 0, 0, position
    k, inner = _split_block(rest)
    return top_rank, k, _unit(arch, inner)[0], position


def discriminator_key_to_authors(name: str) -> str:
    """Our discriminator key -> the authors' (PATN's ResnetDiscriminator names; old-style spectral norm)."""
    name = name.replace(".body.", ".conv_block.")
    for theirs, ours in SPECTRAL_NAMES:
        if name.endswith("." + ours):
            return name[: -len(ours)] + theirs
    return name


def to_authors(state: Mapping[str, Tensor], kind: str, arch: str = "pona") -> OrderedDict[str, Tensor]:
    """Our state dict -> the authors' (``kind`` generator: ``model.``-prefixed, in their order)."""
    if kind == "discriminator":
        return OrderedDict((discriminator_key_to_authors(k), v) for k, v in state.items())
    order = sorted(enumerate(state), key=lambda item: _generator_rank(item[1], arch, item[0]))
    return OrderedDict((WRAPPER_PREFIX + generator_key_to_authors(k, arch), state[k]) for _, k in order)


def _describe_generator_file(keys: Iterable[str]) -> dict[str, object]:
    """What an authors'-style generator file looks like: arch, block count, norm, ngf (where visible)."""
    keys = list(keys)
    arch = ("patn" if any(".conv_block_stream" in k or k.startswith("att.0.conv_block") for k in keys)
            else "pona" if any(re.match(r"att\.\d+\.(att2|dconv|dconv2|conv2)\.", k) for k in keys) else None)
    blocks = {int(m.group(1)) for k in keys if (m := re.match(r"att\.(\d+)\.", k))}
    norm = ("batch" if "stream1_down.2.running_mean" in keys and "stream1_down.1.bias" not in keys
            else "instance" if "stream1_down.1.bias" in keys else None)
    discriminator = any(re.match(r"(model\.)?\d+\.(weight|conv_block)", k) for k in keys)
    return {"arch": arch, "n_blocks": max(blocks) + 1 if blocks else None, "norm": norm,
            "discriminator": discriminator}


def _fix_hint(found: dict[str, object], config: GeneratorConfig) -> str:
    if found["discriminator"]:
        return "the file is a discriminator (netD_PP / netD_PB): pass it as d_pose= / d_appearance="
    if found["arch"] and found["arch"] != config.arch:
        preset = "patn-market1501 or patn-deepfashion" if found["arch"] == "patn" else "market1501 or deepfashion"
        return f"the file is a {found['arch'].upper()} generator: use arch={found['arch']} (preset={preset})"
    if found["norm"] and found["norm"] != config.norm:
        preset = {"batch": "market1501", "instance": "deepfashion"}[found["norm"]]
        return (f"the file uses {found['norm']} norm, the config {config.norm} norm: set generator.norm={found['norm']} "
                f"(preset={'patn-' if config.arch == 'patn' else ''}{preset})")
    if found["n_blocks"] and found["n_blocks"] != config.n_blocks:
        return f"the file has {found['n_blocks']} blocks, the config {config.n_blocks}: set generator.n_blocks={found['n_blocks']}"
    return "check generator.ngf and the preset against the file"


def strip_wrapper_prefix(state: Mapping[str, Tensor], source: str) -> dict[str, Tensor]:
    """Drop the ``model.`` prefix the authors' wrapper adds; files without it (saved from the inner
    model) are accepted as they are. A mix is an error naming the first unprefixed key."""
    keys = list(state)
    prefixed = [k.startswith(WRAPPER_PREFIX) for k in keys]
    if all(prefixed):
        return {k[len(WRAPPER_PREFIX):]: v for k, v in state.items()}
    if any(prefixed):
        first = keys[prefixed.index(False)]
        raise LayoutError(f"{source}: some keys start with {WRAPPER_PREFIX!r} and some do not (first without: "
                          f"{first!r}); this is not one network's state dict")
    return dict(state)


def from_authors(state: Mapping[str, Tensor], model: nn.Module, kind: str, source: str,
                 config: GeneratorConfig) -> Converted:
    """The authors' state dict -> ours for ``model`` (already built from ``config``), checked key by key.

    Instance-norm running statistics (saved by PyTorch 0.3, unused by instance norm) are dropped and
    batch-norm ``num_batches_tracked`` counters (absent before PyTorch 0.4.1) are set to 0, each with
    a note; anything else that does not fit is a ``LayoutError`` naming the first key and the fix.
    """
    arch = config.arch
    if kind == "generator":
        state = strip_wrapper_prefix(state, source)
        translate = lambda k: generator_key_to_authors(k, arch)  # noqa: E731
    else:
        translate = discriminator_key_to_authors
    ours = model.state_dict()
    theirs_to_ours = {translate(k): k for k in ours}
    if kind == "generator":
        hint = _fix_hint(_describe_generator_file(state), config)
    elif any(k.startswith(("model.stream1_down.", "stream1_down.")) for k in state):
        hint = "the file is a generator (netG): pass it as src="
    else:
        hint = "PoNA discriminators carry spectral norm (weight_orig/_u/_v), PATN's do not: check arch= and the preset"
    what = f"a {arch} {kind} ({config.n_blocks} blocks, {config.norm} norm, ngf {config.ngf})" \
        if kind == "generator" else f"a {arch} {kind} ({config.norm} norm)"
    notes: list[str] = []
    converted: dict[str, Tensor] = {}
    dropped = []
    for key, value in state.items():
        if key in theirs_to_ours:
            continue
        leaf = key.rpartition(".")[2]
        if leaf in RUNNING_STATS + ("num_batches_tracked",) and _is_instance_norm_slot(key, model, theirs_to_ours):
            dropped.append(key)
            continue
        raise LayoutError(f"{source}: unexpected key {key!r} {tuple(value.shape)} for {what}; {hint}")
    if dropped:
        notes.append(f"dropped {len(dropped)} instance-norm running statistics (PyTorch 0.3 files carry them, "
                     f"instance norm does not use them), e.g. {dropped[0]}")
    filled = []
    for theirs, key in theirs_to_ours.items():
        expected = ours[key]
        if theirs not in state:
            if theirs.endswith("num_batches_tracked"):
                converted[key] = torch.zeros(expected.shape, dtype=expected.dtype)
                filled.append(theirs)
                continue
            raise LayoutError(f"{source}: missing key {theirs!r} (expected {tuple(expected.shape)}) for {what}; {hint}")
        value = state[theirs]
        if not isinstance(value, Tensor):
            raise LayoutError(f"{source}: {theirs!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(expected.shape):
            raise LayoutError(f"{source}: key {theirs!r} has shape {tuple(value.shape)}, expected "
                              f"{tuple(expected.shape)} for {what}; {hint}")
        if value.dtype != expected.dtype:
            raise LayoutError(f"{source}: key {theirs!r} is {value.dtype}, expected {expected.dtype}")
        converted[key] = value
    if filled:
        notes.append(f"set {len(filled)} batch-norm num_batches_tracked counters to 0 (absent in files saved "
                     f"before PyTorch 0.4.1; unused with the default momentum), e.g. {filled[0]}")
    return Converted(converted, notes)


def _is_instance_norm_slot(key: str, model: nn.Module, theirs_to_ours: Mapping[str, str]) -> bool:
    """Whether the module ``key`` belongs to is one of our instance norms. They are non-affine and own no
    state-dict entry, so the module is found through a sibling key of the same Sequential."""
    parent, _, _ = key.rpartition(".")
    seq_name, _, index = parent.rpartition(".")
    if not index.isdigit():
        return False
    for theirs, ours in theirs_to_ours.items():
        if theirs.startswith(seq_name + "."):
            our_parent = ours[: len(ours) - len(theirs) + len(seq_name)]
            try:
                module = model.get_submodule(f"{our_parent}.{index}")
            except AttributeError:
                return False
            return isinstance(module, nn.InstanceNorm2d)
    return False
