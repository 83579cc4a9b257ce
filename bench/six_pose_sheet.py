"""The six-pose sheet of a generator: test people in several target poses, beside the real target and the
oracle rendering (issue 21's pictures a person can judge).

One row per person (the condition images of different test identities with the most test pairs): the
condition image, then for each target pose the real target, the generated image and the oracle rendering
(the condition's person in the target's exact shot under the condition's camera, ``synthmarket.oracle``)
when ``--data`` is a SynthMarket root; a bar under each generated image gives that pair's limb-region
verdict (green: closer to the target than to the condition in the target's limb region). Layout and
choice of people: ``pona_model.evaluation.six_poses``. Writes the PNG and, beside it, a JSON naming the
generator (path or release, sha256, iteration), the oracle and every pair shown with its limb margin.

    python bench/six_pose_sheet.py --checkpoint released:pona-synth --out docs/pona_synth_six_poses.png
    python bench/six_pose_sheet.py --checkpoint runs/pona-synth/checkpoint.pt --poses 4 --out /tmp/sheet.png
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from pona_model.evaluation.six_poses import choose_rows, generate_rows, write_sheet
from pona_model.inference import load_generator
from poseformats.annotations import read_annotations, read_pairs
from runtime.device import torch_threads
from synthmarket.oracle import RENDERER, NoRendererError, Oracle

# --split -> (image folder, annotation CSV, pairs CSV, the oracle's split of those images)
SPLITS = {"test": ("bounding_box_test", "market-annotation-test.csv", "market-pairs-test.csv", "gallery"),
          "train": ("bounding_box_train", "market-annotation-train.csv", "market-pairs-train.csv", "train")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True,
                        help="generator: a training checkpoint, a release file, or released[:<name>]")
    parser.add_argument("--data", default="data/synthmarket", help="dataset root in Market layout with PATN CSVs")
    parser.add_argument("--split", default="test", choices=sorted(SPLITS), help="whose pairs: the test people's")
    parser.add_argument("--out", required=True, help="the PNG; its JSON is written beside it")
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--poses", type=int, default=6, help="target poses per person")
    parser.add_argument("--scale", type=int, default=3, help="screen pixels per image pixel")
    parser.add_argument("--no-oracle", action="store_true", help="leave out the oracle column")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    folder, annotation_csv, pairs_csv, oracle_split = SPLITS[args.split]
    root = Path(args.data)
    with torch_threads(args.threads):
        model = load_generator(args.checkpoint, args.device)
        annotations = read_annotations(root / annotation_csv)
        rows = choose_rows(read_pairs(root / pairs_csv, known_names=annotations), annotations, args.people,
                           args.poses)
        oracle, oracle_note = None, "left out (--no-oracle)"
        if not args.no_oracle:
            try:
                oracle, oracle_note = Oracle(root, splits=(oracle_split,)).image, RENDERER
            except NoRendererError as exc:
                oracle_note = f"none: {exc}"
        info = write_sheet(args.out, model, generate_rows(model, root / folder, annotations, rows, oracle),
                           oracle_note, args.scale)
    verdicts = [t["limb_region"] for row in info["rows"] for t in row["targets"]]
    print(json.dumps({"sheet": args.out, "json": str(Path(args.out).with_suffix(".json")),
                      "generator": info["generator"], "oracle": oracle_note, "people": len(info["rows"]),
                      "pairs": len(verdicts), "limb_region_holds": verdicts.count("holds")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
