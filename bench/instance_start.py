"""A re-ID start that knows people's looks but no invariance: instance discrimination on auxiliary renders.

The experiment's ResNet-50 is trained to tell apart N auxiliary SynthMarket people from ONE image each
(the first frame of each person's first camera), with the pretraining stage's recipe (``pretrain.*``,
``reid.*``). With one image per class it cannot learn what stays the same across cameras, views and
poses; that is what the experiment's own training images would then have to teach - the regime in
which the number of images per identity should matter (docs/reid-protocol.md, "Looking for a regime").
The subsets are ``synthmarket.auxiliary_subset``'s; the pipeline's pretrain_reid stage makes the same
starts itself with ``pretrain.images`` and ``pretrain.per_id`` (the regime preset's view start).

  python -m synthmarket.auxiliary out=data/synthmarket-aux2000 n_ids=2000
  python bench/instance_start.py --aux data/synthmarket-aux2000 --out runs/instance-start --epochs 6
  python bench/reid_finetune_curve.py --variant inst2000x1x6-m1 --start runs/instance-start/train/checkpoint.pt \\
      reid.optim.backbone_lr_mult=1.0
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def main() -> None:
    from pipelines.config import load_pipeline_config
    from pipelines.stages import pretrain_reid
    from reid.trainer import ReidTrainer
    from synthmarket.auxiliary_subset import subset_manifest

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aux", type=Path, required=True, help="an auxiliary folder (python -m synthmarket.auxiliary)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-id", type=int, default=1, help="images kept per auxiliary person")
    parser.add_argument("--one-track", action="store_true",
                        help="keep images of each person's first camera only (one walk: one view, one camera)")
    parser.add_argument("--one-view", action="store_true",
                        help="keep each person's images in their most frequent view only, from every camera")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("overrides", nargs="*", help="pipeline key=value overrides (pretrain.*, reid.*)")
    args = parser.parse_args()
    images = "one_track" if args.one_track else "one_view" if args.one_view else "all"
    subset = subset_manifest(args.aux, images, args.per_id)
    args.out.mkdir(parents=True, exist_ok=True)
    subset.to_csv(args.out / "subset.csv", index=False)
    print(f"{len(subset)} images of {subset['identity'].nunique()} auxiliary identities")
    cfg = load_pipeline_config("reid.threads=1", "reid.progress=false", f"pretrain.epochs={args.epochs}",
                               f"pretrain.step_size={max(1, int(args.epochs * 0.75))}", "pretrain.warmup_epochs=1",
                               "pretrain.batch_size=64", *args.overrides)
    run = pretrain_reid.settings(cfg).reid  # the pretrain_reid stage's training, on the subset instead
    run = dataclasses.replace(run, out=str(args.out / "train"),
                              data=dataclasses.replace(run.data, root="", manifest=str(args.out / "subset.csv")))
    print(ReidTrainer(run).fit())


if __name__ == "__main__":
    main()
