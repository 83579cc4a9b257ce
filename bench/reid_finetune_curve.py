"""Test mAP against fine-tune steps, for each training set: where (if anywhere) missing data costs mAP.

The regime search (``bench/reid_regime.py``) scores one end point per candidate; this script draws the
whole curve in one training per method. It builds the run's training sets with the pipeline's own
stages (cached: ``prepare_data``, ``subsample``, ``synthesize``, ``merge``, ``render_oracle``, and
``pretrain_reid`` when the start is ``auxiliary``), then trains the re-ID model on each set from the
same start, evaluating the test split every ``--eval-every`` optimiser steps. Every set gets the same
steps at each point (the iterations budget's view); under the epochs budget a set of n images trains
n / n_full of the full set's steps, which the curve also shows (``images_seen``).

The learning rate is held constant (no decay) unless the overrides set one: the curve says where the
sets part, the schedule is chosen afterwards.

  python bench/reid_finetune_curve.py --variant aux400x8-m1 --start auxiliary --steps 400 --eval-every 50 \\
      pretrain.epochs=8 pretrain.step_size=6 reid.optim.backbone_lr_mult=1.0

Rows go to ``--out/curve.csv`` (one per variant, method and evaluation), the plot to ``--out/curve.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from bench_common import variant_command, variant_config, variant_parser

from poseformats.market_names import parse_name

FIELDS = ("variant", "seed", "portion", "method", "steps", "images_seen", "train_images", "identities", "mAP",
          "rank1", "train_seconds", "start", "overrides")
DATA_KINDS = ("prepare_data", "subsample", "train_generator", "synthesize", "merge", "copy_conditions", "render_oracle",
              "prepare_auxiliary", "pretrain_reid")


def training_sets(cfg, need_pretrain: bool) -> tuple[dict[str, str], str, str]:
    """Each method's training folder, the test data root and the auxiliary start's checkpoint (or "")."""
    from pipelines import plan
    from pipelines.graph import build_stages, run_in_order

    stages = {n: s for n, s in build_stages(cfg).items()
              if s.kind in DATA_KINDS and (need_pretrain or s.kind != "pretrain_reid")}
    results = run_in_order(stages, Path(cfg.out) / "cache")
    roots = {m: results[plan.training_set(cfg, m)].result.root for m in cfg.methods}
    pretrained = results["pretrain_reid"].result.checkpoint if need_pretrain else ""
    return roots, results["prepare_data"].result.root, pretrained


# A derived set, not a pipeline method: the kept images plus every real missing image taken by a camera
# in which its person has a kept image. It asks whether what missing images add is the shots (pose, view,
# framing: what a pose transfer could give) or the cameras (which none can).
KEPT_CAMERAS = "kept-cameras"


def _person_camera(name: str) -> tuple[int, int]:
    parsed = parse_name(name)
    if parsed is None:
        raise ValueError(f"{name}: not a Market-1501 image name; kept-cameras needs the camera in the name")
    return parsed.identity, parsed.camera


def kept_cameras_set(kept_root: str, full_root: str, out: Path) -> str:
    """Build the ``kept-cameras`` training folder (symlinks) and return its root."""
    kept_dir, full_dir = Path(kept_root) / "bounding_box_train", Path(full_root) / "bounding_box_train"
    kept = sorted(p.name for p in kept_dir.glob("*.jpg"))
    covered = {_person_camera(n) for n in kept}
    chosen = [p for p in sorted(full_dir.glob("*.jpg")) if _person_camera(p.name) in covered]
    root = out / "sets" / KEPT_CAMERAS / f"{len(kept)}-{len(chosen)}"
    folder = root / "bounding_box_train"
    if not folder.is_dir():
        tmp = root.with_name(root.name + ".tmp")
        (tmp / "bounding_box_train").mkdir(parents=True, exist_ok=True)
        for p in chosen:
            (tmp / "bounding_box_train" / p.name).symlink_to(p.resolve())
        tmp.rename(root)  # whole or absent
    return str(root)


def curve(args: argparse.Namespace, out: Path) -> Iterator[dict]:
    """Each method's evaluations along its training, as CSV rows."""
    import torch

    from reid.evaluate import evaluate_model
    from reid.trainer import ReidTrainer

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    pipeline_methods = [m for m in methods if m != KEPT_CAMERAS]
    if KEPT_CAMERAS in methods:
        pipeline_methods += [m for m in ("none", "full") if m not in pipeline_methods]
    cfg = variant_config(out, args.seed, f"portion={args.portion}", f"methods=[{','.join(pipeline_methods)}]",
                         "reid.optim.step_size=100000", "reid.optim.epochs=100000", *args.overrides)
    torch.set_num_threads(1)
    roots, test_root, pretrained = training_sets(cfg, args.start == "auxiliary")
    if KEPT_CAMERAS in methods:
        roots[KEPT_CAMERAS] = kept_cameras_set(roots["none"], roots["full"], out / "cache")
    start = pretrained if args.start == "auxiliary" else args.start
    for method in methods:
        # the portion and seed are part of the folder: the trainer resumes from a folder it finds, and a
        # curve of another portion must never start from this one's weights
        folder = out / "curves" / args.variant / f"p{args.portion:g}" / f"seed{args.seed}" / method
        model_cfg = dataclasses.replace(cfg.reid.model, weights=start)
        train = dataclasses.replace(cfg.reid, out=str(folder), device=cfg.device, seed=cfg.seed, model=model_cfg,
                                    checkpoint_every=10 ** 9,
                                    data=dataclasses.replace(cfg.reid.data, root=roots[method], manifest=""))
        trainer = ReidTrainer(train)
        seconds = 0.0
        points = [0] if args.eval_start else []
        points += list(range(args.eval_every, args.steps + 1, args.eval_every))
        # a trainer resumed from its folder is scored once where it stands, not once per point it has passed
        points = sorted({max(p, trainer.optimizer_steps) for p in points})
        for target in points:
            t0 = time.perf_counter()
            if target > trainer.optimizer_steps:
                trainer.fit(max_steps=target - trainer.optimizer_steps)
            seconds += time.perf_counter() - t0
            result = evaluate_model(trainer.model, test_root, cfg.reid.data.image_size, progress=False,
                                    precision=cfg.precision, channels_last=cfg.reid.channels_last)
            trainer.model.train()
            yield {"variant": args.variant, "seed": args.seed, "portion": args.portion, "method": method,
                   "steps": trainer.optimizer_steps, "images_seen": trainer.optimizer_steps * cfg.reid.optim.batch_size,
                   "train_images": len(trainer.dataset), "identities": trainer.n_classes,
                   "mAP": round(result["mAP"], 2), "rank1": round(result["rank1"], 2),
                   "train_seconds": round(seconds, 1), "start": args.start, "overrides": " ".join(args.overrides)}


def plot(csv_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.read_csv(csv_path)
    variants = list(dict.fromkeys(table["variant"]))
    columns = min(4, len(variants))  # panels wrap, four to a row, so the figure stays readable
    rows_n = -(-len(variants) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(5 * columns, 4 * rows_n), squeeze=False)
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(["full", "none", "oracle", "copy", *table["method"]]))}
    for ax in axes.flat[len(variants):]:
        ax.axis("off")
    for ax, variant in zip(axes.flat, variants):
        part = table[table["variant"] == variant]
        for method, rows in part.groupby("method", sort=False):
            mean = rows.groupby("steps")["mAP"].mean()
            ax.plot(mean.index, mean.values, marker="o", ms=3, label=method, color=colours[method])
        ax.set_title(variant, fontsize=9)
        ax.set_xlabel("optimiser steps")
        ax.set_ylabel("test mAP (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    parser = variant_parser(__doc__, noun="candidate", out="runs/curve")
    parser.add_argument("--start", default="auxiliary", help="auxiliary (the pretrain_reid stage), random, or a file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--portion", type=float, default=0.2)
    parser.add_argument("--methods", default="none,copy,oracle,full",
                        help=f"pipeline methods, and {KEPT_CAMERAS}: the kept images plus the real missing ones "
                             "from cameras where their person has a kept image")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-start", action="store_true", help="also score the start (step 0)")
    variant_command(parser, csv_name="curve.csv", fields=FIELDS, measure=curve, plot=plot, log_level=logging.WARNING)


if __name__ == "__main__":
    main()
