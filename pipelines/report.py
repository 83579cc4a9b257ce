"""What a run says when it ends: results.json (per method mAP and rank-1 in percent, portion, seed,
generator metrics, stage timings) and the same as a small printed table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.graph import Stage
from pipelines.methods import evaluation, trainings
from pipelines.provenance import provenance
from pipelines.stage_cache import StageResult
from runtime.atomic import atomic_write_text
from runtime.config import to_dict
from runtime.portable import relative


def _generator_scores(result: dict[str, Any]) -> dict[str, Any]:
    """Each metric's value, or 'skipped: <reason>' where its weights are absent."""
    return dict(result.get("scores", {})) if "skipped" not in result else {"skipped": result["skipped"]}


def run_results(cfg: PipelineConfig, stages: dict[str, Stage], results: dict[str, StageResult]) -> dict[str, Any]:
    methods = {}
    trained = trainings(cfg)
    for method in cfg.methods:
        r = results[evaluation(cfg, method)].result
        summary = results[trained[method]].result.get("summary", {}) if trained[method] in results else {}
        methods[method] = {"mAP": r["mAP"], "rank1": r["rank1"], "rank5": r.get("rank5"),
                           "rank10": r.get("rank10"), "ap_definition": r.get("ap_definition"),
                           "weights_init": r.get("weights_init"), "train_precision": r.get("train_precision"),
                           "precision": r.get("precision"),
                           # the re-ID training's optimiser steps (reid.budget=iterations: the same for every
                           # method); trainings cached before the count was recorded give None
                           "optimizer_steps": summary.get("optimizer_steps")}
    out: dict[str, Any] = {
        "portion": cfg.portion, "seed": cfg.seed, "dataset": cfg.data.dataset, "methods": methods,
        "subsample": {k: results["subsample"].result[k] for k in ("n_kept", "n_missing", "n_identities")},
    }
    out["reid_start"] = cfg.reid.model.weights  # imagenet, random, auxiliary (pretrain_reid) or a file
    out["reid_budget"] = cfg.reid.budget  # epochs (the paper) or iterations (the full set's steps for every method)
    if "pretrain_reid" in results:
        p = results["pretrain_reid"].result
        out["pretrain"] = {"checkpoint": p["checkpoint"], "identities": p["n_classes"], "images": p["train_images"],
                           "epochs": cfg.pretrain.epochs, "start": cfg.pretrain.weights}
    if "synthesize" in results:
        out["synthesis"] = results["synthesize"].result["counts"]
    if "synthesize[copy]" in results:
        out["copy_control"] = results["synthesize[copy]"].result["counts"]
    if "synthesize[oracle]" in results:
        out["oracle"] = {"counts": results["synthesize[oracle]"].result["counts"],
                         "renderer": results["synthesize[oracle]"].result["renderer"]}
    for key, suffix, section in (("generator", "", cfg.generator), ("patn_generator", "[patn]", cfg.patn)):
        if f"train_generator{suffix}" in results:
            g = results[f"train_generator{suffix}"].result
            out[key] = {"checkpoint": g["checkpoint"], "sha256": g["sha256"], "trained": g["trained"],
                        "train_on": section.train_on if g["trained"] else "given",
                        # which generator: released:<name>, trained or path (older cache entries lack it)
                        "source": g.get("source", "trained" if g["trained"] else "path"),
                        "iterations": g.get("iterations")}
            if f"evaluate_generator{suffix}" in results:
                out[key]["metrics"] = _generator_scores(results[f"evaluate_generator{suffix}"].result)
    if "synthesize[patn]" in results:
        out["patn_synthesis"] = results["synthesize[patn]"].result["counts"]
    out["stages"] = {name: {"seconds": round(r.seconds, 2), "cached": r.cached, "folder": str(r.folder)}
                     for name, r in results.items()}
    out["config"] = to_dict(cfg)
    return out


def write_run_report(folder: Path, report: dict[str, Any], root: Path | None = None) -> Path:
    """results.json with its provenance; a rerun served from the cache keeps the run that computed
    the results (its timings and provenance) under ``first_run`` beside its own. Paths under ``root``
    (``out=``, by default the folder above ``folder``) are written relative to ``folder``, so the
    file reads the same wherever the run folder is moved or copied."""
    path = folder / "results.json"
    base = Path(folder).absolute()
    report = relative({**report, "provenance": provenance(report.get("config", {}))}, base,
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
    for key, label in (("generator", "generator"), ("patn_generator", "PATN generator")):
        metrics = report.get(key, {}).get("metrics")
        if metrics:
            lines += ["", f"  {label} on test pairs:"] + _generator_lines(metrics)
            skipped = [k for k, v in metrics.items() if isinstance(v, str) and v.startswith("skipped")]
            if skipped:
                lines.append(f"  skipped (weights absent, see results.json): {', '.join(skipped)}")
    lines += ["", "  stage                          seconds"]
    for name, s in report["stages"].items():
        lines.append(f"  {name:<30} {s['seconds']:8.1f}{'  (cached)' if s['cached'] else ''}")
    return "\n".join(lines)
