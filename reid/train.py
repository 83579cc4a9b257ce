"""Train the ResNet-50 re-ID baseline (layumi's ft_net, as the paper used) on a Market-layout folder.

Examples:
  python -m reid.train preset=synth                      # CPU preset on data/synthmarket
  python -m reid.train preset=market1501 data.root=/data/Market-1501-v15.09.15 device=cuda
  python -m reid.train preset=market1501 data.root=runs/aug/p0.2 out=runs/reid-p0.2
  python -m reid.train preset=market1501 model.head=plain     # torchreid's resnet50 for comparison

A run folder holds checkpoint.pt (written atomically after every epoch, every checkpoint_every steps
and on Ctrl-C; rerunning the same command resumes it exactly, mid-epoch included), config.json,
train_manifest.csv (the images trained on) and train_log.jsonl.
Evaluate with: python -m reid.evaluate checkpoint=OUT/checkpoint.pt
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reid.train_config import PRESETS_DIR, ReidTrainConfig
from runtime.config import entry_point, train_command

PROG = "python -m reid.train"


def _trainer(config: ReidTrainConfig) -> Any:
    from reid.trainer import ReidTrainer  # after parsing: --help does not wait for torchreid's import

    return ReidTrainer(config)


@entry_point(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    return train_command(PROG, ReidTrainConfig, argv, description=__doc__, presets_dir=PRESETS_DIR, trainer=_trainer)


if __name__ == "__main__":
    raise SystemExit(main())
