"""Train the PoNA generator and its two discriminators.

Examples:
  python -m pona_model.train preset=synth data.root=data/synthmarket
  python -m pona_model.train preset=market1501 data.root=/data/Market-1501-v15.09.15 device=cuda
  python -m pona_model.train preset=market1501 generator.n_blocks=2 out=runs/pona-2blocks

A run folder holds checkpoint.pt (written atomically; rerunning the same command resumes it),
config.json, train_log.jsonl and samples/iter_*.png (condition | target pose | generated | target).
"""

from __future__ import annotations

from collections.abc import Sequence

from pona_model.train_config import PRESETS_DIR, TrainConfig
from pona_model.trainer import Trainer
from runtime.config import entry_point, train_command

PROG = "python -m pona_model.train"


@entry_point(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    return train_command(PROG, TrainConfig, argv, description=__doc__, presets_dir=PRESETS_DIR, trainer=Trainer)


if __name__ == "__main__":
    raise SystemExit(main())
