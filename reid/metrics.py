"""The Market-1501 evaluation protocol, in one place.

For each query the gallery is ranked by distance. Gallery images labelled junk (identity -1) never
count, neither as a hit nor as a miss; gallery images of the query's identity seen by the query's
camera are dropped for that query; distractors (identity 0) stay, as wrong matches. A query left
without any true match (its identity absent from the gallery in other cameras) is skipped, counted
and warned about, as the protocol does.

CMC rank-k: the share of evaluated queries whose first true match is within the top k.
Two average-precision definitions are offered (``ap=``):

- ``torchreid`` (default): torchreid's ``eval_market1501``, plain AP = mean over the hits of the
  precision at each hit.
- ``trapezoid``: the official Market-1501 code (and layumi's baseline): for the i-th hit (1-based)
  at rank r, the mean of the precision at r, i / r, and the precision just before it,
  (i - 1) / (r - 1) (1 when r = 1), averaged over the hits.

Both are always computed and returned; ``mAP`` is the requested one. CMC and the torchreid mAP come
from torchreid itself; this module's own vectorised ranking reproduces them (the tests check that)
and supplies the trapezoid AP and any CMC rank deeper than a tiny gallery lets torchreid compute.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from poseformats.market_names import DISTRACTOR_ID, JUNK_ID
from reid._torchreid import torchreid_module

AP_DEFINITIONS = ("torchreid", "trapezoid")
REPORTED_RANKS = (1, 5, 10)
MAX_RANK = 50
_CHUNK = 128  # query rows ranked at once (memory ~ rows x gallery x a few arrays)


class EvaluationError(ValueError):
    """Inputs the protocol cannot evaluate (wrong shapes, no evaluable query); the message says why."""


class SkippedQueryWarning(UserWarning):
    """Some queries have no true match in the gallery (other cameras, junk excluded) and were skipped."""


def rank_queries(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                 g_camids: np.ndarray) -> dict[str, np.ndarray]:
    """Per query (rows of ``distmat``; junk already removed from the gallery): ``n_good`` true
    matches, ``first_hit`` (1-based rank of the first true match, 0 when none), ``ap_torchreid``,
    ``ap_trapezoid`` (NaN when no match) and ``n_valid`` (gallery size after the same-camera drop).
    The gallery is ordered with ``np.argsort`` as torchreid does, so ties break identically."""
    nq = distmat.shape[0]
    out = {"n_good": np.zeros(nq, np.int64), "first_hit": np.zeros(nq, np.int64),
           "ap_torchreid": np.full(nq, np.nan), "ap_trapezoid": np.full(nq, np.nan),
           "n_valid": np.zeros(nq, np.int64)}
    for start in range(0, nq, _CHUNK):
        rows = slice(start, min(nq, start + _CHUNK))
        order = np.argsort(distmat[rows], axis=1)
        same_id = g_pids[order] == q_pids[rows, None]
        valid = ~(same_id & (g_camids[order] == q_camids[rows, None]))
        hit = same_id & valid
        rank = np.cumsum(valid, axis=1)          # 1-based rank among the valid gallery images
        n_hits = np.cumsum(hit, axis=1)          # hits up to and including this position
        n_good = hit.sum(axis=1)
        precision = np.where(hit, n_hits / np.maximum(rank, 1), 0.0)
        before = np.where(rank > 1, (n_hits - 1) / np.maximum(rank - 1, 1), 1.0)
        precision_before = np.where(hit, before, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["ap_torchreid"][rows] = precision.sum(axis=1) / n_good
            out["ap_trapezoid"][rows] = ((precision + precision_before) / 2).sum(axis=1) / n_good
        first = np.argmax(hit, axis=1)
        out["first_hit"][rows] = np.where(n_good > 0, rank[np.arange(len(first)), first], 0)
        out["n_good"][rows] = n_good
        out["n_valid"][rows] = valid.sum(axis=1)
    return out


def _torchreid_eval_market1501():
    return torchreid_module("torchreid.reid.metrics.rank").eval_market1501


def _as_array(values: Any, name: str, length: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise EvaluationError(f"{name} must be one-dimensional, got shape {array.shape}")
    if length is not None and len(array) != length:
        raise EvaluationError(f"{name} has {len(array)} entries, the distance matrix needs {length}")
    return array.astype(np.int64)


def evaluate_rankings(distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, *,
                      ap: str = "torchreid", query_names: Sequence[str] | None = None,
                      max_rank: int = MAX_RANK) -> dict[str, Any]:
    """Market-1501 mAP and CMC of a query x gallery distance matrix (smaller = more similar).

    Returns percentages ``mAP`` (by ``ap``), ``mAP_torchreid``, ``mAP_trapezoid``, ``rank1``,
    ``rank5``, ``rank10`` and ``cmc`` (ranks 1..max_rank), plus ``ap_definition``, ``n_queries``
    (evaluated), ``n_queries_skipped``, ``skipped_queries`` (names or indices), ``n_gallery`` (after
    junk removal), ``n_gallery_junk`` and ``n_gallery_distractors``.
    """
    if ap not in AP_DEFINITIONS:
        raise EvaluationError(f"ap={ap!r} is not one of {', '.join(AP_DEFINITIONS)}")
    dist = np.asarray(distmat, dtype=np.float64)
    if dist.ndim != 2:
        raise EvaluationError(f"the distance matrix must be 2-D (queries x gallery), got shape {dist.shape}")
    nq, ng = dist.shape
    q_pids = _as_array(q_pids, "q_pids", nq)
    q_camids = _as_array(q_camids, "q_camids", nq)
    g_pids = _as_array(g_pids, "g_pids", ng)
    g_camids = _as_array(g_camids, "g_camids", ng)
    if not np.isfinite(dist).all():
        raise EvaluationError("the distance matrix holds NaN or infinite values (a diverged model?)")

    junk = g_pids == JUNK_ID
    dist, g_pids, g_camids = dist[:, ~junk], g_pids[~junk], g_camids[~junk]
    if dist.shape[1] == 0:
        raise EvaluationError("the gallery holds no images besides junk (-1)")

    ranked = rank_queries(dist, q_pids, g_pids, q_camids, g_camids)
    ok = (ranked["n_good"] > 0) & (q_pids > 0)
    names = list(query_names) if query_names is not None else [str(i) for i in range(nq)]
    skipped = [names[i] for i in np.flatnonzero(~ok)]
    if skipped:
        shown = ", ".join(skipped[:5]) + (f", ... ({len(skipped) - 5} more)" if len(skipped) > 5 else "")
        warnings.warn(f"{len(skipped)} of {nq} queries have no true match in the gallery (same identity in "
                      f"another camera; junk excluded) or are junk/distractor queries, and were skipped: "
                      f"{shown}", SkippedQueryWarning, stacklevel=2)
    if not ok.any():
        raise EvaluationError(f"none of the {nq} queries has a true match in the gallery (same identity, "
                              "another camera): are query and gallery from the same dataset?")

    # torchreid's CMC arrays must all reach max_rank, so it is capped by the shortest valid list.
    reach = int(min(max_rank, ranked["n_valid"][ok].min()))
    eval_market1501 = _torchreid_eval_market1501()
    cmc_tr, map_tr = eval_market1501(dist[ok], q_pids[ok], g_pids, q_camids[ok], g_camids, reach)
    first = ranked["first_hit"][ok]
    cmc_own = np.array([(first <= k).mean() for k in range(1, max_rank + 1)])
    cmc = np.concatenate([np.asarray(cmc_tr, dtype=np.float64)[:reach], cmc_own[reach:]])
    map_trap = float(np.mean(ranked["ap_trapezoid"][ok]))
    # torchreid's CMC is float32: percentages are rounded to 4 decimals so they print as computed.
    cmc = np.round(100.0 * cmc, 4)
    result = {
        "mAP": 100.0 * (float(map_tr) if ap == "torchreid" else map_trap),
        **{f"rank{k}": float(cmc[k - 1]) for k in REPORTED_RANKS if k <= max_rank},
        "ap_definition": ap,
        "mAP_torchreid": 100.0 * float(map_tr),
        "mAP_trapezoid": 100.0 * map_trap,
        "cmc": [float(c) for c in cmc],
        "n_queries": int(ok.sum()),
        "n_queries_skipped": len(skipped),
        "skipped_queries": skipped,
        "n_gallery": int(dist.shape[1]),
        "n_gallery_junk": int(junk.sum()),
        "n_gallery_distractors": int((g_pids == DISTRACTOR_ID).sum()),
    }
    return result


def format_table(result: dict[str, Any]) -> str:
    """A small text table of one evaluation."""
    rows = [("mAP", f"{result['mAP']:.2f}"), ("rank-1", f"{result['rank1']:.2f}"),
            ("rank-5", f"{result['rank5']:.2f}"), ("rank-10", f"{result['rank10']:.2f}")]
    other = "trapezoid" if result["ap_definition"] == "torchreid" else "torchreid"
    rows.append((f"mAP ({other} AP)", f"{result[f'mAP_{other}']:.2f}"))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'metric':<{width}}  value (%)", f"{'-' * width}  ---------"]
    lines += [f"{name:<{width}}  {value:>9}" for name, value in rows]
    lines.append(f"AP: {result['ap_definition']}; queries {result['n_queries']} evaluated, "
                 f"{result['n_queries_skipped']} skipped; gallery {result['n_gallery']} "
                 f"({result['n_gallery_distractors']} distractors, {result['n_gallery_junk']} junk removed)")
    return "\n".join(lines)
