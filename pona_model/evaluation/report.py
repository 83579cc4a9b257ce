"""The printed table: one row per result in the order of the paper's Table I, the paper's own PoNA row
for the same dataset (if known), and the reasons for skipped metrics.

The papers' PSNR column is the legacy wrap-around figure (``pona_model.metrics.pixel``), so the paper's
PSNR stands in the ``PSNR-wrap`` column beside this run's legacy figure, never beside the correct PSNR.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

# The paper's Table I rows for PoNA (3 blocks): TF Inception, OpenPose; for scale only.
PAPER_TABLE_I: dict[str, dict[str, float]] = {
    "market1501": {"ssim": 0.315, "is": 3.487, "mask_ssim": 0.814, "mask_is": 3.867, "psnr_legacy_wrap": 28.257,
                   "pckh": 0.94},
    "deepfashion": {"ssim": 0.775, "is": 3.338, "psnr_legacy_wrap": 31.382, "pckh": 0.95},
}
PAPER_LABELS = {"market1501": "PoNA, paper (Market-1501)", "deepfashion": "PoNA, paper (DeepFashion)"}
PAPER_ROWS = ("auto", "none", *PAPER_TABLE_I)
TABLE_COLUMNS = (("ssim", "SSIM"), ("is", "IS"), ("mask_ssim", "mask-SSIM"), ("mask_is", "mask-IS"),
                 ("psnr", "PSNR"), ("psnr_legacy_wrap", "PSNR-wrap"), ("pckh", "PCKh"), ("pckh_gt", "PCKh-gt"),
                 ("l1", "L1"), ("fid", "FID"), ("kid", "KID"), ("lpips", "LPIPS"), ("limb_region", "limbs"))
PSNR_WRAP_NOTE = ("PSNR-wrap: the papers' PSNR, its error taken on uint8 arrays that wrap around modulo 256 "
                  "(about 28 dB on Market for almost any image); compare it only with published tables. "
                  "PSNR is the correct one (docs/evaluation.md).")


def dataset_of(annotations: str | None) -> str | None:
    """The paper dataset a PATN annotation file belongs to, from its name (market-annotation-*.csv,
    fasion-resize-annotation-*.csv), else None."""
    name = PurePath(annotations).name.lower() if annotations else ""
    if "fasion" in name or "fashion" in name:
        return "deepfashion"
    return "market1501" if "market" in name else None


def paper_row_for(results: Sequence[dict[str, Any]], paper: str) -> str | None:
    """The paper row to print: ``paper`` itself, none, or (auto) the dataset every result's annotation
    file names, when they agree."""
    if paper not in PAPER_ROWS:
        raise ValueError(f"paper_row must be one of {list(PAPER_ROWS)}, got {paper!r}")
    if paper != "auto":
        return None if paper == "none" else paper
    found = {dataset_of(r.get("inputs", {}).get("annotations")) for r in results}
    return found.pop() if len(found) == 1 else None


def _cell(metric: dict[str, Any] | None, key: str) -> str:
    if metric is None:
        return "-"
    value = metric.get("value")
    if value is None:
        return "skipped"
    digits = {"psnr": 3, "psnr_legacy_wrap": 3, "fid": 2, "kid": 5, "is": 3, "mask_is": 3}.get(key, 4)
    return f"{value:.{digits}f}"


def format_table(results: Sequence[dict[str, Any]], paper: str = "auto") -> str:
    """A plain-text table in the order of the paper's Table I (then PSNR-wrap, PCKh-gt, L1, FID, KID, LPIPS, limbs), one
    row per result, the paper's PoNA row of the same dataset first for scale (``paper``: auto, none,
    market1501 or deepfashion), the skip reasons and what PSNR-wrap is below."""
    header = ["method", *[title for _, title in TABLE_COLUMNS]]
    rows = []
    dataset = paper_row_for(results, paper)
    if dataset is not None:
        values = PAPER_TABLE_I[dataset]
        rows.append([PAPER_LABELS[dataset], *[f"{values[k]:g}" if k in values else "" for k, _ in TABLE_COLUMNS]])
    for r in results:
        rows.append([r.get("label") or "this run", *[_cell(r["metrics"].get(k), k) for k, _ in TABLE_COLUMNS]])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    reasons: dict[str, list[str]] = {}
    for r in results:
        for key, title in TABLE_COLUMNS:
            m = r["metrics"].get(key)
            if m is not None and m.get("value") is None and m.get("skipped"):
                reasons.setdefault(m["skipped"], []).append(title)
    for reason, titles in reasons.items():
        lines.append(f"skipped {', '.join(dict.fromkeys(titles))}: {reason}")
    used = {r["pairs"]["used"] for r in results}
    sizes = {tuple(r["pinned"]["compared_size"]) for r in results}
    lines.append(f"pairs scored: {', '.join(map(str, sorted(used)))}; compared at "
                 f"{', '.join(f'{h} x {w}' for h, w in sorted(sizes))}")
    if dataset is not None or any("psnr_legacy_wrap" in r["metrics"] for r in results):
        lines.append(PSNR_WRAP_NOTE)
    return "\n".join(lines)
