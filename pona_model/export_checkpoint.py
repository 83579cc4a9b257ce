"""Export a checkpoint of this project in the authors' layout, so their test and metric scripts
(Zhangjinso/PoNA, tengteng95/Pose-Transfer) run our trained weights.

Examples:
  python -m pona_model.export_checkpoint checkpoint=runs/pona-market1501/checkpoint.pt out=checkpoints/market_PoNA
  python -m pona_model.export_checkpoint checkpoint=runs/patn-synth/checkpoint.pt out=export epoch=latest

Writes out/<epoch>_net_netG.pth and, when the checkpoint holds the discriminators,
out/<epoch>_net_netD_PP.pth (pose) and out/<epoch>_net_netD_PB.pth (appearance): plain state dicts
with the authors' names, run by their code with ``--which_epoch <epoch>``. Importing the files
back (``python -m pona_model.import_checkpoint``) gives the same tensors bit for bit. The layouts:
docs/checkpoint-formats.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pona_model.authors_checkpoint import LayoutError, to_authors
from pona_model.checkpoint_tags import GENERATOR_FORMAT
from runtime.checkpoint import load_checkpoint, save_checkpoint
from runtime.config import entry_point, param, parse_config
from runtime.errors import CheckpointError

PROG = "python -m pona_model.export_checkpoint"
# Our checkpoint entry -> the authors' file name suffix.
FILES = (("generator", "net_netG"), ("d_pose", "net_netD_PP"), ("d_appearance", "net_netD_PB"))


@dataclass
class ExportConfig:
    checkpoint: str = param("", "a checkpoint of this project (trained, or imported)")
    out: str = param("", "folder for the authors' files (their checkpoints_dir/name)")
    epoch: str = param("latest", "the authors' --which_epoch: files are <epoch>_net_netG.pth, ...")


def export(checkpoint: str | Path, out: str | Path, epoch: str = "latest") -> list[Path]:
    """Write the authors' files for every network ``checkpoint`` holds; returns their paths."""
    state = load_checkpoint(checkpoint, GENERATOR_FORMAT)
    arch = state["config"]["generator"].get("arch", "pona")
    written = []
    for key, suffix in FILES:
        if key not in state:
            continue
        theirs = to_authors(state[key], "generator" if key == "generator" else "discriminator", arch)
        path = Path(out) / f"{epoch}_{suffix}.pth"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, theirs)
        written.append(path)
    return written


@entry_point("python -m pona_model.export_checkpoint")
def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(ExportConfig, argv, prog=PROG, description=__doc__)
    if not cfg.checkpoint or not cfg.out:
        print(f"{PROG}: error: checkpoint= and out= are required (see --help)", file=sys.stderr)
        return 2
    try:
        paths = export(cfg.checkpoint, cfg.out, cfg.epoch)
    except (OSError, CheckpointError, LayoutError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    for p in paths:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
