"""What a run says when it ends: results.json (per method mAP and rank-1 in percent, portion, seed,
generator metrics, stage timings) and the same as a small printed table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines import methods, plan
from pipelines.config import PipelineConfig
from pipelines.graph import Stage
from pipelines.provenance import provenance
from pipelines.stage_cache import StageResult
from pipelines.stage_names import (
    PRETRAIN_REID,
    SUBSAMPLE,
    StageName,
    evaluated_generator,
    fill,
    trained_generator,
)
from reid.model import released_start
from runtime.atomic import atomic_write_text
from runtime.config import to_dict
from runtime.portable import relative

# The commit of the code a run started with, put in its report by run_pipeline / run_sweep before any
# stage runs and moved into the provenance by write_run_report (a long run may outlive its checkout).
STARTED_AT = "commit_at_start"
# What results.json keeps of each method's re-ID evaluation, beside the training's optimiser steps.
EVALUATION_KEYS = ("mAP", "rank1", "rank5", "rank10", "ap_definition", "weights_init", "train_precision", "precision")


def run_results(cfg: PipelineConfig, stages: dict[StageName, Stage], results: dict[StageName, StageResult]
                ) -> dict[str, Any]:
    """results.json's content for one run: every method of the run, then what each row of the methods
    table and each generator made in it."""
    by_method = {}
    trained = plan.trainings(cfg)
    for method in cfg.methods:
        evaluation = results[plan.evaluation(cfg, method)].result
        summary = results[trained[method]].result.summary if trained[method] in results else {}
        by_method[method] = {key: getattr(evaluation, key) for key in EVALUATION_KEYS}
        # the re-ID training's optimiser steps (reid.budget=iterations: the same for every method);
        # trainings cached before the count was recorded give None
        by_method[method]["optimizer_steps"] = summary.get("optimizer_steps")
    sub = results[SUBSAMPLE].result
    out: dict[str, Any] = {
        "portion": cfg.portion, "seed": cfg.seed, "dataset": cfg.data.dataset, "methods": by_method,
        "subsample": {"n_kept": sub.n_kept, "n_missing": sub.n_missing, "n_identities": sub.n_identities},
    }
    out["reid_start"] = cfg.reid.model.weights  # imagenet, random, auxiliary (pretrain_reid), released:NAME or a file
    start = released_start(cfg.reid.model.weights, cfg.reid.model.backbone)
    if start is not None:
        out["reid_start_sha256"] = start.sha256
    out["reid_budget"] = cfg.reid.budget  # epochs (the paper) or iterations (the full set's steps for every method)
    if PRETRAIN_REID in results:
        p = results[PRETRAIN_REID].result
        out["pretrain"] = {"checkpoint": p.checkpoint, "identities": p.n_classes, "images": p.train_images,
                           "epochs": cfg.pretrain.epochs, "start": cfg.pretrain.weights}
    for method in methods.TABLE.values():
        if method.filler and fill(method) in results:
            out[method.report_key] = results[fill(method)].result.summary()
    for generator in methods.GENERATORS.values():
        name = trained_generator(generator.name)
        if name not in results:
            continue
        g = results[name].result
        out[generator.report_key] = {
            "checkpoint": g.checkpoint, "sha256": g.sha256, "trained": g.trained,
            "train_on": getattr(cfg, generator.section).train_on if g.trained else "given",
            "source": g.source, "iterations": g.iterations, "weights": g.weights}  # source: released:<name>, trained or path
        if evaluated_generator(generator.name) in results:
            out[generator.report_key]["metrics"] = results[evaluated_generator(generator.name)].result.summary()
    out["caveats"] = caveats(by_method, keeps_everything=plan.keeps_everything(cfg))
    out["stages"] = {name: {"seconds": round(r.seconds, 2), "cached": r.cached, "folder": str(r.folder),
                            "made_on": r.made_on} for name, r in results.items()}
    out["config"] = to_dict(cfg)
    return out


def caveats(by_method: dict[str, dict[str, Any]], keeps_everything: bool) -> list[str]:
    """What this run's own numbers say it cannot measure. Augmentation is measurable only where missing
    images cost mAP (full above none) and where a perfect pose transfer wins some back (oracle above
    none); the default preset's start already solves the task, so its table fails both
    (docs/reid-protocol.md, "The regime preset"). Read off the run, never off the preset's name. A run
    that keeps everything (``plan.keeps_everything``: p = 1) has nothing missing, so every method trains the
    full set and ties by construction: a sweep's reference column, not a failed measurement, no note."""
    if "none" not in by_method or keeps_everything:
        return []
    none = by_method["none"]["mAP"]
    reasons = {"full": "keeping p of the images costs nothing here",
               "oracle": "the oracle, a perfect pose transfer, does not beat the kept images alone"}
    return [f"{reason} ({method} {by_method[method]['mAP']:.2f} <= none {none:.2f}), so this run cannot measure "
            "what a generator wins back; Table VI's regime is preset=regime (docs/reid-protocol.md)"
            for method, reason in reasons.items() if method in by_method and by_method[method]["mAP"] <= none]


def write_run_report(folder: Path, report: dict[str, Any], root: Path | None = None) -> Path:
    """results.json with its provenance (the code's commit taken from ``report[STARTED_AT]``, set when
    the run started, where there is one); a rerun served from the cache keeps the run that computed
    the results (its timings and provenance) under ``first_run`` beside its own. Paths under ``root``
    (``out=``, by default the folder above ``folder``) are written relative to ``folder``, so the
    file reads the same wherever the run folder is moved or copied."""
    path = folder / "results.json"
    base = Path(folder).absolute()
    started_at = report.get(STARTED_AT)
    report = {k: v for k, v in report.items() if k != STARTED_AT}
    report = relative({**report, "provenance": provenance(report.get("config", {}), started_at)}, base,
                      root if root is not None else base.parent)
    if path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            before = {}
        same = {k: v.get("folder") for k, v in before.get("stages", {}).items()} == {
            k: v.get("folder") for k, v in report.get("stages", {}).items()}
        if same and before.get("methods") == report.get("methods"):
            report["first_run"] = before.get("first_run") or {
                k: before.get(k) for k in ("seconds", "stages", "provenance") if k in before}
    atomic_write_text(path, json.dumps(report, indent=2, default=str) + "\n")
    return path


def _generator_lines(metrics: dict[str, Any]) -> list[str]:
    """Each score beside what it is read against: the identity baseline (the condition image handed
    back), the pose estimator's ceiling on the real targets, and 0 for the pose control."""
    def num(key: str) -> str:
        v = metrics.get(key)
        return f"{v:.3f}" if isinstance(v, (int, float)) else "-"

    lines = [f"    pose_gain_l1 {num('pose_gain_l1')}, pose_sensitivity_l1 {num('pose_sensitivity_l1')} "
             "(0 = the target pose is ignored)",
             f"    PCKh {num('pckh_gt')} (the {metrics.get('pckh_estimator', 'pose')} estimator on the real targets: "
             f"{num('pckh_gt_ceiling')})"]
    for key in ("ssim", "mask_ssim", "psnr", "l1"):
        if key in metrics:
            lines.append(f"    {key} {num(key)} (identity baseline {num(key + '_identity')})")
    shown = {"pose_gain_l1", "pose_sensitivity_l1", "pckh_gt", "pckh_gt_ceiling", "ssim", "mask_ssim", "psnr", "l1"}
    rest = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, (int, float))
                     and k not in shown and not k.endswith("_identity"))
    if rest:
        lines.append(f"    {rest}")
    return lines


def format_run(report: dict[str, Any]) -> str:
    lines = [f"re-ID on {report['dataset']}, portion p = {report['portion']:g}, seed {report['seed']} "
             f"({report['subsample']['n_kept']} kept, {report['subsample']['n_missing']} missing training images)",
             "", f"  {'method':<8} {'mAP':>7} {'rank-1':>7} {'rank-5':>7}"]
    for method, m in report["methods"].items():
        r5 = f"{m['rank5']:7.2f}" if m.get("rank5") is not None else f"{'':>7}"
        lines.append(f"  {method:<8} {m['mAP']:7.2f} {m['rank1']:7.2f} {r5}")
    for generator in methods.GENERATORS.values():
        metrics = report.get(generator.report_key, {}).get("metrics")
        if metrics:
            lines += ["", f"  {generator.label} on test pairs:"] + _generator_lines(metrics)
            skipped = [k for k, v in metrics.items() if isinstance(v, str) and v.startswith("skipped")]
            if skipped:
                lines.append(f"  skipped (weights absent, see results.json): {', '.join(skipped)}")
    for note in report.get("caveats", []):
        lines += ["", f"  note: {note}"]
    lines += ["", "  stage                          seconds"]
    for name, s in report["stages"].items():
        lines.append(f"  {name:<30} {s['seconds']:8.1f}{'  (cached)' if s['cached'] else ''}")
    return "\n".join(lines)
