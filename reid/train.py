"""Train the ResNet-50 re-ID baseline (layumi's ft_net, as the paper used) on a Market-layout folder.

Examples:
  python -m reid.train preset=synth                      # CPU preset on data/synthmarket
  python -m reid.train preset=market1501 data.root=/data/Market-1501-v15.09.15 device=cuda
  python -m reid.train preset=market1501 data.root=runs/aug/p0.2 out=runs/reid-p0.2
  python -m reid.train preset=market1501 model.head=plain     # torchreid's resnet50 for comparison

A run folder holds checkpoint.pt (written atomically after every epoch; rerunning the same
command resumes it), config.json, train_manifest.csv (the images trained on) and train_log.jsonl.
Evaluate with: python -m reid.evaluate checkpoint=OUT/checkpoint.pt
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

from reid.train_config import PRESETS_DIR, ReidTrainConfig
from runtime.config import entry_point, parse_config


@entry_point("python -m reid.train")
def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = parse_config(ReidTrainConfig, argv, prog="python -m reid.train", description=__doc__,
                          presets_dir=PRESETS_DIR)
    # Imported after parsing so that --help does not wait for torchreid's import.
    from reid.market_index import MarketLayoutError
    from reid.trainer import ReidTrainer, TrainingDiverged
    from runtime.checkpoint import CheckpointError
    from runtime.errors import MissingWeightsError

    try:
        summary = ReidTrainer(config).fit()
    except (OSError, MissingWeightsError, CheckpointError, MarketLayoutError, TrainingDiverged, ValueError) as exc:
        print(f"python -m reid.train: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
