"""Train the PoNA generator and its two discriminators.

Examples:
  python -m pona_model.train preset=synth data.root=data/synthmarket
  python -m pona_model.train preset=market1501 data.root=/data/Market-1501-v15.09.15 device=cuda
  python -m pona_model.train preset=market1501 generator.n_blocks=2 out=runs/pona-2blocks

A run folder holds checkpoint.pt (written atomically; rerunning the same command resumes it),
config.json, train_log.jsonl and samples/iter_*.png (condition | target pose | generated | target).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

from pona_model.annotations import FormatError
from pona_model.checkpoint import CheckpointError
from pona_model.cli import entry_point, parse_config
from pona_model.losses import MissingWeightsError
from pona_model.train_config import PRESETS_DIR, TrainConfig
from pona_model.trainer import Trainer, TrainingDiverged


@entry_point("python -m pona_model.train")
def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = parse_config(TrainConfig, argv, prog="python -m pona_model.train", description=__doc__,
                          presets_dir=PRESETS_DIR)
    try:
        summary = Trainer(config).fit()
    except (OSError, MissingWeightsError, CheckpointError, FormatError, TrainingDiverged, ValueError) as exc:
        print(f"python -m pona_model.train: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
