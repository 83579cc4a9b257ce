"""SynthMarket: a procedurally rendered pedestrian dataset in Market-1501 layout, with exact poses.

  python -m synthmarket out=data/synthmarket seed=0
  python -m synthmarket out=/tmp/tiny n_train_ids=5 n_test_ids=5 sheet=/tmp/tiny/sheet.png

Writes bounding_box_train/, query/, bounding_box_test/ (with 0000_ distractors and -1_ junk), the PATN
annotation and pair CSVs, manifest.csv and, last, synthmarket.json. The same seed and settings give
byte-identical files; an existing finished root with the same settings is left as it is. Only a new
or empty folder (or one an interrupted run of this command marked) is written to; any other is refused.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from runtime.config import entry_point, parse_config
from synthmarket.config import SynthMarketConfig
from synthmarket.dataset import ConfigMismatchError, OutputFolderError, generate_synthmarket


@entry_point("python -m synthmarket")
def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(SynthMarketConfig, argv, prog="python -m synthmarket", description=__doc__)
    start = time.perf_counter()
    try:
        manifest = generate_synthmarket(cfg.out, cfg)
    except (ConfigMismatchError, OutputFolderError) as exc:
        print(f"python -m synthmarket: error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    counts = manifest.groupby("split").size().to_dict()
    print(f"SynthMarket in {cfg.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + f" images ({seconds:.1f} s)")
    if cfg.sheet:
        from synthmarket.contact_sheet import write_contact_sheet

        write_contact_sheet(cfg.sheet, cfg)
        print(f"contact sheet: {cfg.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
