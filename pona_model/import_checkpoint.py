"""Import the authors' released PoNA or PATN weights as a checkpoint of this project.

Examples:
  python -m pona_model.import_checkpoint src=test1_net_netG.pth arch=pona preset=deepfashion out=pona-deepfashion.pt
  python -m pona_model.import_checkpoint src=latest_net_netG.pth arch=patn preset=patn-market1501 \\
      d_pose=latest_net_netD_PP.pth d_appearance=latest_net_netD_PB.pth out=patn-market1501.pt

Keys of this command: src (the authors' generator file, required), arch (pona or patn, required;
must agree with the preset), out (the checkpoint to write, required), d_pose / d_appearance (the
authors' netD_PP / netD_PB files, optional: training continues from those given), iteration (the
iteration the imported weights stand at, default 0). Every other key is a training-config key
(preset=, generator.*, data.*, ...; the training config's own out= does not apply here), as for
``python -m pona_model.train``: the checkpoint records that config, so ``generate``, ``evaluate``,
``augment.synthesize`` and the pipeline's ``generator.checkpoint=`` / ``patn.checkpoint=`` load it
like any other; to continue training, copy it to
<run folder>/checkpoint.pt and run ``python -m pona_model.train`` with the same preset and
out=<run folder>. Files load with ``weights_only=True``. The layouts: docs/checkpoint-formats.md.
"""

from __future__ import annotations

import logging
import pickle
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pona_model.authors_checkpoint import Converted, LayoutError, from_authors
from pona_model.checkpoint_tags import GENERATOR_FORMAT
from pona_model.generator import ARCHS
from pona_model.models import build_discriminators, build_generator
from pona_model.train_config import PRESETS_DIR, TrainConfig
from runtime.checkpoint import FORMAT_VERSION, file_sha256, save_checkpoint, unreadable_reason
from runtime.config import build, entry_point, parse_config, resolve, to_dict
from runtime.errors import CheckpointError, ConfigError

PROG = "python -m pona_model.import_checkpoint"
OWN_KEYS = ("src", "arch", "out", "d_pose", "d_appearance", "iteration")
REQUIRED = ("src", "arch", "out")


def read_state_dict(path: str | Path, label: str) -> dict[str, Tensor]:
    """A plain ``{name: tensor}`` file loaded with ``weights_only=True``; anything else is named."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{label}={p} does not exist")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise CheckpointError(f"{label}={p} is not a readable PyTorch state dict ({unreadable_reason(exc)})") from exc
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        kind = "a project checkpoint (format tag " + repr(state.get("format")) + ")" if isinstance(state, Mapping) \
            and "format" in state else f"a {type(state).__name__} that is not a flat name -> tensor dict"
        raise CheckpointError(f"{label}={p} is {kind}; expected the authors' state dict (e.g. latest_net_netG.pth)")
    return dict(state)


def convert(config: TrainConfig, generator: Mapping[str, Tensor], source: str,
            d_pose: Mapping[str, Tensor] | None = None, d_appearance: Mapping[str, Tensor] | None = None,
            d_sources: tuple[str, str] = ("d_pose", "d_appearance")) -> dict[str, Converted]:
    """The authors' state dicts -> ours for the networks ``config`` builds (checked key by key)."""
    with torch.device("meta"):  # shapes and module types only: nothing is allocated
        g = build_generator(config.generator)
    out = {"generator": from_authors(generator, g, "generator", source, config.generator)}
    if d_pose is None and d_appearance is None:
        return out
    # on the CPU: spectral norm's set-up power iteration is slow on the meta device, and D is small
    nets = dict(zip(("d_pose", "d_appearance"), build_discriminators(config.generator, config.discriminator)))
    for (name, state), src in zip((("d_pose", d_pose), ("d_appearance", d_appearance)), d_sources):
        if state is not None:
            out[name] = from_authors(state, nets[name], "discriminator", src, config.generator)
    return out


def imported_state(config: TrainConfig, converted: Mapping[str, Converted], provenance: dict[str, Any],
                   iteration: int = 0) -> dict[str, Any]:
    """A project checkpoint holding imported weights only (no optimiser state): loadable for generation
    everywhere and as the start of a training run (``Trainer.start_from_imported``)."""
    state: dict[str, Any] = {
        "format": GENERATOR_FORMAT, "version": FORMAT_VERSION, "iteration": iteration,
        "total_iterations": config.schedule.iterations(), "config": to_dict(config),
        "perceptual": "not trained here: imported weights", "imported": provenance,
    }
    for name, c in converted.items():
        state[name] = c.state_dict
    return state


def _split_args(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    own: dict[str, str] = {}
    rest: list[str] = []
    for arg in argv:
        key = arg.split("=", 1)[0]
        if "=" in arg and key in OWN_KEYS:
            own[key] = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return own, rest


def _config(own: dict[str, str], rest: list[str]) -> TrainConfig:
    missing = [k for k in REQUIRED if not own.get(k)]
    if missing:
        raise ConfigError(f"missing {', '.join(k + '=' for k in missing)} (see --help)")
    arch = own["arch"]
    if arch not in ARCHS:
        raise ConfigError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    config = resolve(TrainConfig, rest, PRESETS_DIR)
    if config.generator.arch != arch:
        named = [a.split("=", 1)[1] for a in rest if a.startswith(("preset=", "config="))]
        if named or any(a.startswith("generator.arch=") for a in rest):
            suggestion = {"pona": "market1501 or deepfashion", "patn": "patn-market1501 or patn-deepfashion"}[arch]
            raise ConfigError(f"arch={arch} but {', '.join(named) or 'generator.arch'} builds a "
                              f"{config.generator.arch} generator: use preset={suggestion}")
        values = to_dict(config)
        values["generator"]["arch"] = arch
        config = build(TrainConfig, values)
    return config


@entry_point("python -m pona_model.import_checkpoint")
def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    own, rest = _split_args(list(sys.argv[1:] if argv is None else argv))
    if "-h" in rest or "--help" in rest:
        parse_config(TrainConfig, ["--help"], prog=PROG, description=__doc__, presets_dir=PRESETS_DIR)
    try:
        config = _config(own, rest)
        iteration = int(own.get("iteration", "0"))
    except (ConfigError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        files = {"generator": own["src"], **{k: own[k] for k in ("d_pose", "d_appearance") if own.get(k)}}
        states = {k: read_state_dict(v, "src" if k == "generator" else k) for k, v in files.items()}
        converted = convert(config, states["generator"], f"src={files['generator']}", states.get("d_pose"),
                            states.get("d_appearance"), (f"d_pose={files.get('d_pose')}",
                                                         f"d_appearance={files.get('d_appearance')}"))
        provenance = {k: {"file": str(Path(v).absolute()), "sha256": file_sha256(v), "notes": converted[k].notes}
                      for k, v in files.items()}
        save_checkpoint(own["out"], imported_state(config, converted, provenance, iteration))
    except (OSError, CheckpointError, LayoutError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    for name, c in converted.items():
        for note in c.notes:
            print(f"note ({name}): {note}")
    g = config.generator
    print(f"wrote {own['out']}: {g.arch} generator ({g.n_blocks} blocks, {g.norm} norm, {g.image_size[0]} x "
          f"{g.image_size[1]}){' + ' + ', '.join(k for k in converted if k != 'generator') if len(converted) > 1 else ''}"
          f" from {own['src']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
