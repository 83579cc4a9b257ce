"""Would an average of the generator's weights score better than its last iterate? Measured on snapshots.

A GAN generator's weights wander from one evaluation to the next (on SynthMarket consecutive
500-iteration evaluations of one training move SSIM by up to 0.027), and the usual remedy is to
release an average of the recent weights (an exponential moving average, as in progressive GANs and
StyleGAN, or a plain average over a window). Before that becomes a training option, this script asks
the snapshots a training has already kept (``bench/generator_learning_curve.py --snapshots``) whether
it pays: it scores every snapshot in ``--window`` and the plain average of their weights (batch-norm
running statistics averaged too), with the learning curve's metrics on the same first ``--pairs`` test
pairs (SSIM, mask-SSIM, limb region beside the identity baseline; pose_gain_l1).

    python bench/generator_weight_average.py --run training/pona3-ngf32-synth --window 6000:8000 \\
        --out bench/results/generator_weight_average.csv
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch
from bench_common import write_csv
from generator_learning_curve import TestPairs, model_scores

from pona_model.generator import GeneratorConfig
from pona_model.inference import LoadedGenerator, fp32_weights
from pona_model.models import build_generator
from pona_model.weight_average import average_states, load_snapshots, snapshot_iteration
from runtime.config import build
from runtime.device import resolve_device, resolve_precision, torch_threads


def score(name: str, state: dict[str, torch.Tensor], config: GeneratorConfig, pairs: TestPairs,
          device: torch.device, dtype: torch.dtype, seed: int) -> dict[str, Any]:
    """The learning curve's scores (``model_scores``) of the generator holding ``state``."""
    generator = build_generator(config)
    generator.load_state_dict(fp32_weights(state))
    generator.to(device).eval().to(memory_format=torch.channels_last)
    model = LoadedGenerator(generator, config, device, Path(name), "", 0, dtype, True)
    return {"weights": name, **model_scores(model, pairs, seed)}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a learning-curve folder with snapshots/ and train/config.json")
    parser.add_argument("--window", required=True, help="FIRST:LAST iterations (inclusive) of the snapshots averaged")
    parser.add_argument("--data", default="data/synthmarket", help="the SynthMarket root of the test pairs")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench/results/generator_weight_average.csv")
    args = parser.parse_args()
    run = Path(args.run)
    first, last = (int(v) for v in args.window.split(":"))
    snapshots, states = load_snapshots([p for p in (run / "snapshots").glob("generator_*.pt")
                                        if first <= snapshot_iteration(p) <= last])
    if len(snapshots) < 2:
        raise SystemExit(f"{run / 'snapshots'}: fewer than 2 snapshots in {args.window}; nothing to average")
    train_config = json.loads((run / "train" / "config.json").read_text(encoding="utf-8"))
    config = build(GeneratorConfig, train_config["generator"], prefix="generator.")
    device = resolve_device("auto")
    dtype = resolve_precision("auto", device)
    pairs = TestPairs(Path(args.data), tuple(config.image_size), args.pairs, estimator=None)
    rows = []
    with torch_threads(args.threads):
        for path, state in zip(snapshots, states):
            rows.append(score(f"iteration {snapshot_iteration(path)}", state, config, pairs, device, dtype,
                              train_config["seed"]))
            logging.info("%s", rows[-1])
        rows.append(score(f"average of {len(states)} ({first}-{last})", average_states(states), config, pairs, device,
                          dtype, train_config["seed"]))
        logging.info("%s", rows[-1])
    for row in rows:
        row["run"] = str(run)
    write_csv(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
