"""Which window of a training's snapshots to release, chosen on validation people, never on the test pairs.

A release may be the average of a window of snapshots (``python -m pona_model.release
--average-snapshots``), and the test pairs' learning curve says which window scores best; choosing by it
would tune the release on the test split. This script chooses on people the generator never saw and
the test split does not hold: it renders ``--train-ids + --val-ids`` auxiliary people with the settings
the training's auxiliary folder was made with (``synthmarket.auxiliary``; the people keyed past the
first ``--train-ids`` were never rendered for the training), builds ``--pairs`` pairs among those
validation people with the function that builds the test pairs, and scores every snapshot and the
average of every window of ``--window`` consecutive snapshots with the learning curve's metrics.

The criterion is fixed before any score is read: the window whose average has the highest SSIM +
mask-SSIM on the validation pairs (the two appearance targets of a released generator). Only the chosen
window is then scored on the test pairs, by ``bench/generator_weight_average.py``.

Caveat, written where the choice is: look-alike groups are drawn over every rendered person, so a few
validation people wear a one-attribute change of a training person's outfit; it can only make
validation easier, for every window alike.

    python bench/generator_validation_window.py --run training/pona3-ngf32-synth \\
        --out bench/results/generator_validation_windows_ngf32.csv

``--release NAME`` scores one released generator instead (verified by sha256; its own training config),
as the single "window" of its weights: the start of a fine-tune, which has no snapshot of its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import pandas as pd
import torch
from bench_common import write_csv
from generator_learning_curve import TestPairs
from generator_weight_average import score

from pona_model.checkpoint_tags import GENERATOR_RELEASE_FORMAT
from pona_model.generator import GeneratorConfig
from pona_model.inference import fp32_weights
from pona_model.release_spec import PREFIX, resolve_release
from pona_model.weight_average import average_states, load_snapshots, snapshot_iteration
from poseformats.annotations import build_pairs, read_annotations, write_pairs
from runtime.checkpoint import load_checkpoint
from runtime.config import build
from runtime.device import resolve_device, resolve_precision, torch_threads
from runtime.errors import CheckpointError
from runtime.releases import ReleaseError
from synthmarket.auxiliary import ANNOTATIONS, AUX_BASE, MARKER, generate_auxiliary
from synthmarket.config import SynthMarketConfig

VALIDATION_PAIRS = "market-pairs-validation.csv"


def validation_people(train_data: Path, cache: Path, train_ids: int, val_ids: int, n_pairs: int, seed: int) -> Path:
    """Render the validation people beside the training's (same settings) and write their pairs; returns
    the pairs file, in the rendered folder's Market layout."""
    info = json.loads((train_data / MARKER).read_text(encoding="utf-8"))
    if info["n_ids"] != train_ids:
        raise SystemExit(f"{train_data / MARKER}: the training's auxiliary folder holds {info['n_ids']} people, "
                         f"not --train-ids {train_ids}; pass --train-ids {info['n_ids']}")
    cfg = dataclasses.replace(build(SynthMarketConfig, info["dataset_config"], prefix="synthmarket."),
                              progress=False, workers=0)
    root = cache / f"aux{train_ids + val_ids}"
    manifest = generate_auxiliary(root, cfg, train_ids + val_ids)
    held_out = set(manifest.loc[manifest["source"] >= AUX_BASE + train_ids, "name"])
    keypoints = {k: v for k, v in read_annotations(root / ANNOTATIONS).items() if k in held_out}
    pairs_file = root / VALIDATION_PAIRS
    pairs = build_pairs(keypoints, n=n_pairs, seed=seed)
    write_pairs(pairs_file, pairs)
    logging.info("validation: %d people, %d images, %d pairs in %s", val_ids, len(keypoints), len(pairs), root)
    return pairs_file


def release_weights(name: str) -> tuple[list[int], list[dict[str, torch.Tensor]], dict, str]:
    """A release's iteration, fp32 weights, training config and label, after its sha256 and format checks."""
    try:
        release = resolve_release(f"{PREFIX}{name}")
        bundle = load_checkpoint(release.path, GENERATOR_RELEASE_FORMAT)
    except (ReleaseError, CheckpointError) as exc:
        raise SystemExit(f"--release {name}: {exc}") from None
    return [int(bundle["iteration"])], [fp32_weights(bundle["generator"])], bundle["config"], f"{PREFIX}{name}"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a learning-curve folder with snapshots/ and train/config.json")
    source.add_argument("--release", help="a released generator's name (releases/<name>/), scored alone")
    parser.add_argument("--train-data", default="data/synthmarket-aux", help="the training's auxiliary folder")
    parser.add_argument("--train-ids", type=int, default=400)
    parser.add_argument("--val-ids", type=int, default=100)
    parser.add_argument("--window", type=int, default=5, help="consecutive snapshots averaged (5 = 2,000 iterations)")
    parser.add_argument("--first", type=int, default=0, help="the earliest snapshot iteration a window may start at")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--cache", default="runs/generator-validation")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench/results/generator_validation_windows.csv")
    args = parser.parse_args()
    if args.release:
        iterations, states, train_config, run = release_weights(args.release)
        args.window = 1
    else:
        run = Path(args.run)
        snapshots, states = load_snapshots([p for p in (run / "snapshots").glob("generator_*.pt")
                                            if snapshot_iteration(p) >= args.first])
        if len(snapshots) < args.window:
            raise SystemExit(f"{run / 'snapshots'}: {len(snapshots)} snapshots, fewer than --window {args.window}")
        train_config = json.loads((run / "train" / "config.json").read_text(encoding="utf-8"))
        iterations = [snapshot_iteration(p) for p in snapshots]
    config = build(GeneratorConfig, train_config["generator"], prefix="generator.")
    pairs_file = validation_people(Path(args.train_data), Path(args.cache), args.train_ids, args.val_ids,
                                   args.pairs, train_config["seed"])
    pairs = TestPairs(pairs_file.parent, tuple(config.image_size), args.pairs, estimator=None, split="train",
                      pairs_file=pairs_file)
    device = resolve_device("auto")
    dtype = resolve_precision("auto", device)
    rows = []
    with torch_threads(args.threads):
        for it, state in zip(iterations, states):
            rows.append({"kind": "snapshot", "first": it, "last": it,
                         **score(f"iteration {it}", state, config, pairs, device, dtype, train_config["seed"])})
            logging.info("%s", rows[-1])
        for i in range(len(states) - args.window + 1):
            first, last = iterations[i], iterations[i + args.window - 1]
            rows.append({"kind": "window", "first": first, "last": last,
                         **score(f"average {first}-{last}", average_states(states[i:i + args.window]), config,
                                 pairs, device, dtype, train_config["seed"])})
            logging.info("%s", rows[-1])
    table = pd.DataFrame(rows)
    windows = table[table["kind"] == "window"]
    chosen = windows.loc[(windows["ssim"] + windows["mask_ssim"]).idxmax()]
    table["chosen"] = (table["kind"] == "window") & (table["first"] == chosen["first"])
    table["run"] = str(run)
    table["validation_pairs"] = str(pairs_file)
    write_csv(args.out, table.to_dict("records"))
    print(f"wrote {args.out}")
    if args.release:
        print(f"{run}: SSIM {chosen['ssim']}, mask-SSIM {chosen['mask_ssim']}, limb region {chosen['limb_region']}")
        return
    print(f"chosen on validation (max SSIM + mask-SSIM of the window averages): {chosen['first']}-{chosen['last']} "
          f"(SSIM {chosen['ssim']}, mask-SSIM {chosen['mask_ssim']}); score it on the test pairs with\n"
          f"  python bench/generator_weight_average.py --run {run} --window {chosen['first']}:{chosen['last']}")


if __name__ == "__main__":
    main()
