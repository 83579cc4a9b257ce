"""Does a generator recipe learn pose transfer, and when? A learning curve on SynthMarket.

Trains a named recipe (``--recipe``; any ``--set key=value`` of ``pona_model.train`` on top) on the
auxiliary identities (leak-free: never a test identity, never an image it will stand in for) and,
every ``--eval-every`` iterations, scores the live generator on the dataset's first ``--pairs`` test
pairs, all at the generator's size:

- pose_gain_l1 / pose_sensitivity_l1 (``pona_model.metrics.pose_control``): does the output move
  with the target pose, and towards the target;
- SSIM and mask-SSIM, beside the identity baseline (the condition image handed back unchanged);
- limb_region (``pona_model.metrics.limbs``): the fraction of pairs whose output is closer to the
  target than to the condition in the target's limb region (the identity baseline scores 0);
- self_l1: L1 of G(I_c, P_c, P_c) to I_c, the "target = condition" sanity check;
- pckh_gt: the offline pose estimator on the generated images against the target annotations,
  beside the same estimator's score on the real target images (its ceiling); ``--pose-estimator``
  (auto: the synth estimator, releases/pose-synth, on SynthMarket; photo: BlazePose) says which;
- seconds of training so far (evaluation time excluded).

Writes ``curve.csv``, ``curve.png`` and, per evaluation, ``sheets/iter_NNNNNNN.png``: one test
person's condition image, then six target poses (skeleton above, generated image below).
``--overfit-batch N`` first runs the other sanity check: N iterations of L1 alone on one fixed batch.

    python bench/generator_learning_curve.py --recipe paper --minutes 45 --iterations 10000
    python bench/generator_learning_curve.py --recipe cpu --minutes 8 --eval-every 250
    python bench/generator_learning_curve.py --recipe cpu --set schedule.lr=5e-4 --out runs/curves/lr5e-4
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_common import stacked_pairs, write_csv
from PIL import Image

from pona_model.checkpoint_tags import GENERATOR_FORMAT
from pona_model.inference import LoadedGenerator
from pona_model.metrics.limbs import limb_margins, limb_region_score
from pona_model.metrics.masks import apply_mask, body_mask
from pona_model.metrics.pckh import PCKhAccumulator
from pona_model.metrics.pose_control import pose_control
from pona_model.metrics.ssim import ssim
from pona_model.pair_dataset import PairDataset
from pona_model.sample_grid import to_uint8
from pona_model.train_config import load_train_config
from pona_model.trainer import Trainer
from poseformats.annotations import read_annotations, read_pairs
from poseformats.keypoints import draw_skeleton
from runtime.checkpoint import load_checkpoint
from runtime.device import torch_threads

# The recipes. "paper": the synth preset as it stands (the paper's dynamics at the CPU size: gates
# at 0, dropout 0.5, lr 2e-4, GAN from iteration 0). "cpu": pipelines' synth-fast recipe, whose
# preset file says why each lever is set.
RECIPES: dict[str, tuple[str, ...]] = {
    "paper": ("preset=synth", "generator.gate_init=0", "generator.block_dropout=0.5", "schedule.lr=0.0002",
              "schedule.gate_lr_mult=1", "loss.gan_start=0", "loss.body_l1_weight=0", "loss.lambda_gan=5",
              "generator.pose_sigma=3"),
    "cpu": ("preset=synth",),
    # PATN, the comparison row: the same CPU recipe with PATN's 9 PAT blocks (pona_model/presets/patn-synth.yaml)
    "patn-cpu": ("preset=patn-synth",),
}


def schedule_for(iterations: int, overrides: list[str]) -> list[str]:
    """Stretch the preset's schedule (constant, then linear decay over the last 30 %) to end at
    ``iterations``, so a long curve does not stop at the preset's own length."""
    cfg = load_train_config(*overrides)
    per_epoch = cfg.schedule.pairs_per_epoch / cfg.schedule.batch_size
    epochs = max(2, round(iterations / per_epoch))
    decay = max(1, round(0.3 * epochs))
    return [f"schedule.n_epochs={epochs - decay}", f"schedule.n_epochs_decay={decay}"]


class TestPairs:
    """The first ``n`` test pairs at the generator's size, with the identity baseline and the
    estimator's ceiling computed once. ``split`` and ``pairs_file`` score other pairs of a Market-layout
    folder the same way (the validation people of ``bench/generator_validation_window.py``)."""

    def __init__(self, data: Path, size: tuple[int, int], n: int, estimator: Any, split: str = "test",
                 pairs_file: Path | None = None) -> None:
        keypoints = read_annotations(data / f"market-annotation-{split}.csv")
        pairs = read_pairs(pairs_file or data / f"market-pairs-{split}.csv", known_names=keypoints).head(n)
        self.dataset = PairDataset(data / f"bounding_box_{split}", keypoints, pairs, image_size=size)
        self.batch = stacked_pairs(self.dataset)
        self.target = to_uint8(self.batch["target"])
        self.condition = to_uint8(self.batch["condition"])
        self.kp_target = self.batch["kp_target"].numpy()
        self.kp_condition = self.batch["kp_condition"].numpy()
        self.masks = np.stack([body_mask(k, *size) for k in self.kp_target])
        self.estimator = estimator
        self.baseline = self.image_scores(self.condition)
        self.ceiling = self.pckh(self.target) if estimator is not None else None

    def image_scores(self, generated: np.ndarray) -> dict[str, float]:
        margins = limb_margins(generated, self.target, self.condition, self.kp_target, self.kp_condition)
        return {"ssim": float(np.mean(ssim(generated, self.target))),
                "mask_ssim": float(np.mean(ssim(apply_mask(generated, self.masks),
                                                apply_mask(self.target, self.masks)))),
                "limb_region": limb_region_score(margins["margin"])["value"]}

    def pckh(self, images: np.ndarray) -> float | None:
        acc = PCKhAccumulator()
        for image, kp in zip(images, self.kp_target):
            acc.add(self.estimator.estimate(image), kp)
        return acc.value


def six_poses_sheet(model: LoadedGenerator, pairs: TestPairs, path: Path) -> None:
    """The first test pair's condition image in the first six different target poses."""
    cond = pairs.batch["condition"][:1]
    kp_c = pairs.batch["kp_condition"][:1]
    seen, targets = set(), []
    for i in range(len(pairs.kp_target)):
        name = pairs.dataset.targets[i]
        if name not in seen:
            seen.add(name)
            targets.append(pairs.batch["kp_target"][i])
        if len(targets) == 6:
            break
    kp_t = torch.stack(targets)
    out = to_uint8(model.generate(cond.expand(len(targets), -1, -1, -1), kp_c.expand(len(targets), -1, -1), kp_t))
    h, w = model.image_size
    sheet = Image.new("RGB", ((len(targets) + 1) * w, 2 * h), "white")
    sheet.paste(Image.fromarray(to_uint8(cond)[0]), (0, h))
    for j in range(len(targets)):
        sheet.paste(Image.fromarray(draw_skeleton(kp_t[j].numpy(), h, w)), ((j + 1) * w, 0))
        sheet.paste(Image.fromarray(out[j]), ((j + 1) * w, h))
    scale = 3
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.resize((sheet.width * scale, sheet.height * scale), Image.Resampling.NEAREST).save(path)


def evaluate(trainer: Trainer, pairs: TestPairs, seconds: float, sheet: Path, seed: int) -> dict[str, Any]:
    g = trainer.generator
    g.eval()
    model = LoadedGenerator(g, trainer.config.generator, trainer.device, Path("live"), "", trainer.iteration,
                            trainer.dtype, trainer.config.channels_last)
    with torch.inference_mode():
        b = pairs.batch
        self_rec = model.generate(b["condition"], b["kp_condition"], b["kp_condition"])
        self_l1 = float((self_rec.cpu() - b["condition"]).abs().mean() / 2)
        scores = model_scores(model, pairs, seed)
        pckh = {k: scores.pop(k) for k in ("pckh_gt", "pckh_gt_ceiling") if k in scores}  # the curve's last columns
        row = {"iteration": trainer.iteration, "train_seconds": round(seconds, 1), **scores,
               "self_l1": round(self_l1, 5),
               # PoNA's attention gates; PATN has none (an empty cell)
               "gates": ";".join(f"{x.item():.3f}" for x in getattr(g, "cross_attention_gates", list)()), **pckh}
        six_poses_sheet(model, pairs, sheet)
    g.train()
    return row


def model_scores(model: LoadedGenerator, pairs: TestPairs, seed: int) -> dict[str, Any]:
    """The curve's scores of one generator on the test pairs: the pose control, SSIM and mask-SSIM
    beside the identity baseline, the limb region and, with an estimator, PCKh beside its ceiling."""
    with torch.inference_mode():
        b = pairs.batch
        generated = to_uint8(model.generate(b["condition"], b["kp_condition"], b["kp_target"]))
        control = pose_control(model, pairs.dataset, seed=seed, batch_size=64)
    scores = pairs.image_scores(generated)
    row = {"pose_gain_l1": round(control["pose_gain_l1"], 5),
           "pose_sensitivity_l1": round(control["pose_sensitivity_l1"], 5),
           "l1_true_pose": round(control["l1_true_pose"], 5),
           "ssim": round(scores["ssim"], 4), "ssim_identity": round(pairs.baseline["ssim"], 4),
           "mask_ssim": round(scores["mask_ssim"], 4), "mask_ssim_identity": round(pairs.baseline["mask_ssim"], 4),
           "limb_region": round(scores["limb_region"], 4) if scores["limb_region"] is not None else ""}
    if pairs.estimator is not None:
        value = pairs.pckh(generated)
        row["pckh_gt"] = round(value, 4) if value is not None else ""
        row["pckh_gt_ceiling"] = round(pairs.ceiling, 4) if pairs.ceiling is not None else ""
    return row


def previous_rows(path: Path, iteration: int) -> list[dict[str, Any]]:
    """The rows of an earlier chunk's curve up to the resumed ``iteration`` (later rows belong to a lost
    tail), with numbers read back as numbers."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        parsed = {k: (float(v) if k not in ("gates",) and v not in ("",) else v) for k, v in row.items()}
        parsed["iteration"] = int(parsed["iteration"])
        if parsed["iteration"] <= iteration:
            out.append(parsed)
    return out


def overfit_one_batch(overrides: list[str], iterations: int) -> list[float]:
    """L1 alone on one fixed batch: the network and the loop can fit at all."""
    cfg = load_train_config(*overrides, "loss.lambda_gan=0", "out=/nonexistent-overfit")
    trainer = Trainer(cfg, check_data=True)
    dataset = trainer._dataset(cfg.data.images, cfg.data.annotations, cfg.data.pairs)
    batch = stacked_pairs(dataset, cfg.schedule.batch_size)
    curve = []
    for _ in range(iterations):
        curve.append(trainer.step(batch)["g_l1"])
        trainer.iteration += 1
    return curve


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    it = [r["iteration"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(it, [r["pose_gain_l1"] for r in rows], label="pose_gain_l1")
    axes[0].plot(it, [r["pose_sensitivity_l1"] for r in rows], label="pose_sensitivity_l1")
    axes[0].axhline(0.02, ls=":", c="C0")
    axes[0].axhline(0.05, ls=":", c="C1")
    axes[1].plot(it, [r["ssim"] for r in rows], label="SSIM", c="C2")
    axes[1].plot(it, [r["ssim_identity"] for r in rows], ls="--", c="C2", label="SSIM identity")
    axes[1].plot(it, [r["mask_ssim"] for r in rows], label="mask-SSIM", c="C3")
    axes[1].plot(it, [r["mask_ssim_identity"] for r in rows], ls="--", c="C3", label="mask-SSIM identity")
    limbs = [r["limb_region"] if isinstance(r.get("limb_region"), float) else np.nan for r in rows]
    if not np.isnan(limbs).all():  # curves from before the column have none
        axes[1].plot(it, limbs, label="limb region (identity: 0)", c="C6")
        axes[1].axhline(0.8, ls=":", c="C6")
    if rows and "pckh_gt" in rows[0]:
        axes[2].plot(it, [r["pckh_gt"] or 0 for r in rows], label="PCKh (generated)", c="C4")
        axes[2].plot(it, [r["pckh_gt_ceiling"] or 0 for r in rows], ls="--", c="C4", label="PCKh ceiling (real)")
    axes[2].plot(it, [r["self_l1"] for r in rows], label="self L1 (target = condition)", c="C5")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="cpu", choices=sorted(RECIPES))
    parser.add_argument("--set", nargs="*", default=[], help="extra key=value overrides of pona_model.train")
    parser.add_argument("--data", default="data/synthmarket", help="SynthMarket dataset (its test pairs are scored)")
    parser.add_argument("--train-data", default="data/synthmarket-aux",
                        help="training folder (Market layout + PATN CSVs): the auxiliary identities")
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=8.0, help="training-time budget (evaluation excluded)")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-pckh", action="store_true", help="skip the pose estimator (faster searches)")
    parser.add_argument("--pose-estimator", default="auto", choices=("auto", "synth", "photo"),
                        help="PCKh's estimator: synth (releases/pose-synth, for 64 x 32 SynthMarket crops), photo "
                             "(BlazePose), auto (synth when --data is SynthMarket, else photo)")
    parser.add_argument("--overfit-batch", type=int, default=0, help="first: this many L1-only steps on one batch")
    parser.add_argument("--keep-schedule", action="store_true",
                        help="keep the recipe's own schedule length instead of stretching it to --iterations")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out (its checkpoint and curve.csv) instead of starting a fresh "
                             "curve: for long trainings run in chunks")
    parser.add_argument("--snapshots", action="store_true",
                        help="keep the generator's weights at every evaluation in --out/snapshots/ (for later scoring)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out or f"runs/curves/{args.recipe}")
    out.mkdir(parents=True, exist_ok=True)
    overrides = [*RECIPES[args.recipe], f"data.root={args.train_data}", f"threads={args.threads}",
                 "num_workers=0", "sample_every=0", "checkpoint_every=1000000", "resume=true",
                 f"out={out / 'train'}", *args.set]
    if not args.keep_schedule:
        overrides = [*overrides[:1], *schedule_for(args.iterations, overrides), *overrides[1:]]
    summary: dict[str, Any] = {"recipe": args.recipe, "overrides": overrides}
    with torch_threads(args.threads):
        if args.overfit_batch:
            curve = overfit_one_batch(overrides, args.overfit_batch)
            summary["overfit_one_batch_l1"] = {"first": curve[0], "last": curve[-1], "iterations": len(curve)}
            print(f"overfit one batch: L1 {curve[0]:.3f} -> {curve[-1]:.3f} in {len(curve)} iterations")
        cfg = load_train_config(*overrides)
        checkpoint = out / "train" / "checkpoint.pt"
        if checkpoint.exists() and not args.resume:
            checkpoint.unlink()  # this script's own folder: a fresh curve unless --resume
        trainer = Trainer(cfg)
        if checkpoint.exists():
            trainer.load_state_dict(load_checkpoint(checkpoint, GENERATOR_FORMAT, map_location=trainer.device),
                                    checkpoint)
        estimator = None
        if not args.no_pckh:
            from pona_model.evaluation.networks import make_pose_estimator
            from pona_model.evaluation.settings import MetricSettings

            estimator, reason = make_pose_estimator(MetricSettings(pose_estimator=args.pose_estimator),
                                                    Path(args.data) / "bounding_box_test")
            if estimator is None:
                raise SystemExit(f"generator_learning_curve: error: {reason} (or pass --no-pckh)")
            summary["pose_estimator"] = estimator.provenance  # which estimator scored pckh_gt and its ceiling
        pairs = TestPairs(Path(args.data), tuple(cfg.generator.image_size), args.pairs, estimator)
        rows = previous_rows(out / "curve.csv", trainer.iteration) if args.resume else []
        if not rows:
            trainer.begin()  # a fine-tuning run (init=) scores its start at iteration 0
            rows = [evaluate(trainer, pairs, 0.0, out / "sheets" / "iter_0000000.png", cfg.seed)]
            print(json.dumps(rows[-1]))
        trained = float(rows[-1]["train_seconds"])
        budget_end = trained + args.minutes * 60
        while trainer.iteration < min(args.iterations, trainer.total_iterations) and trained < budget_end:
            start = time.perf_counter()
            trainer.fit(max_iterations=args.eval_every)
            trained += time.perf_counter() - start
            rows.append(evaluate(trainer, pairs, trained, out / "sheets" / f"iter_{trainer.iteration:07d}.png",
                                 cfg.seed))
            print(json.dumps(rows[-1]), flush=True)
            if args.snapshots:
                snapshot = out / "snapshots" / f"generator_{trainer.iteration:07d}.pt"
                snapshot.parent.mkdir(parents=True, exist_ok=True)
                torch.save({k: v.half() if v.is_floating_point() else v
                            for k, v in trainer.generator.state_dict().items()}, snapshot)
            write_csv(out / "curve.csv", rows)
            plot(rows, out / "curve.png", f"recipe {args.recipe} {' '.join(args.set)}")
    summary["rows"] = rows
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
