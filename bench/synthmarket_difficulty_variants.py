"""The colour-histogram difficulty proxy on SynthMarket variants, one CSV row each.

The regime preset's dataset must stay harder for colour histograms + LDA than for the ResNet-50
(docs/reid-protocol.md, "The difficulty proxy on the regime"). Each variant is the regime's SynthMarket
settings plus the variant's overrides, rendered once into ``--cache`` (a folder per variant, reused when
already finished) and scored by ``bench/synthmarket_difficulty.py``'s ``evaluate``.

    python bench/synthmarket_difficulty_variants.py --out bench/results/synthmarket_difficulty_variants.csv \\
        "" "shade_jitter=0.0" "shade_jitter=0.0 palette_size=4" "camera_strength=0.3"
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd
from bench_common import write_csv  # bench/ is on sys.path when this file runs as a script
from synthmarket_difficulty import evaluate

from pipelines.config import load_pipeline_config
from synthmarket.config import SynthMarketConfig
from synthmarket.dataset import generate_synthmarket


def variant_config(variant: str, out: Path) -> SynthMarketConfig:
    """The regime preset's SynthMarket settings (800 train ids, jackets, identical cameras, shared
    scenes) with the variant's ``key=value`` overrides, validated as the pipeline validates them."""
    keys = [f"data.synthmarket.{item}" for item in variant.split()]
    cfg = load_pipeline_config("preset=regime", *keys).data.synthmarket
    return dataclasses.replace(cfg, out=str(out), progress=False, workers=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", help='SynthMarket overrides per variant, e.g. "shade_jitter=0.0"; "" = the preset')
    ap.add_argument("--cache", default="runs/difficulty-variants", help="where the variants are rendered")
    ap.add_argument("--out", default="bench/results/synthmarket_difficulty_variants.csv")
    args = ap.parse_args()
    rows = []
    for variant in args.variants:
        folder = Path(args.cache) / (variant.replace(" ", "_").replace("=", "-") or "preset")
        t0 = time.perf_counter()
        generate_synthmarket(folder, variant_config(variant, folder))
        scores = evaluate(folder)
        for _, r in scores.iterrows():
            rows.append({"variant": variant or "(the regime preset)", "method": r["method"], "portion": r["portion"],
                         "mAP": r["mAP"], "rank1": r["rank1"], "seconds": round(time.perf_counter() - t0, 1)})
        print(pd.DataFrame(rows[-len(scores):]).to_string(index=False), flush=True)
    write_csv(args.out, rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
