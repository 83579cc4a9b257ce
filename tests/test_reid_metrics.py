"""The Market-1501 protocol on hand-computed cases: junk, distractors, same-camera matches, skipped
queries, both AP definitions, and agreement with torchreid's own evaluation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from reid.metrics import EvaluationError, SkippedQueryWarning, evaluate_rankings, format_table, rank_queries

# Gallery: identity, camera.  g3 is a distractor (0), g4 junk (-1).
G_PIDS = np.array([1, 1, 2, 0, -1, 1, 2])
G_CAMS = np.array([1, 2, 2, 3, 1, 3, 1])
# Queries: q0 = id 1 cam 1, q1 = id 2 cam 2, q2 = id 3 (absent from the gallery), q3 = id 1 cam 2.
Q_PIDS = np.array([1, 2, 3, 1])
Q_CAMS = np.array([1, 2, 1, 2])
DIST = np.array([
    # g0    g1    g2    g3    g4    g5    g6
    [0.10, 0.40, 0.50, 0.30, 0.20, 0.60, 0.70],  # q0
    [0.45, 0.35, 0.05, 0.55, 0.25, 0.65, 0.15],  # q1
    [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70],  # q2
    [0.40, 0.20, 0.60, 0.30, 0.50, 0.10, 0.70],  # q3
])
# By hand, after dropping junk g4 and each query's same-identity same-camera images:
#  q0: g0 dropped (cam 1), g4 junk; ranking g3 (distractor, miss), g1 hit @2, g2 miss, g5 hit @4, g6 miss.
#      plain AP = (1/2 + 2/4) / 2 = 0.5; trapezoid = ((0 + 1/2)/2 + (1/3 + 2/4)/2) / 2 = 1/3; first hit 2.
#  q1: g2 dropped (cam 2); g6 hit @1, the only match: AP 1 both ways; first hit 1.
#  q2: identity 3 is not in the gallery: skipped.
#  q3: g1 dropped (cam 2); g5 hit @1, g3 miss, g0 hit @3: plain AP = (1 + 2/3) / 2 = 5/6;
#      trapezoid = ((1 + 1)/2 + (1/2 + 2/3)/2) / 2 = 19/24; first hit 1.
AP_PLAIN = [0.5, 1.0, 5 / 6]
AP_TRAPEZOID = [1 / 3, 1.0, 19 / 24]


def _evaluate(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedQueryWarning)
        return evaluate_rankings(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, **kwargs)


@pytest.mark.parametrize("ap, per_query", [("torchreid", AP_PLAIN), ("trapezoid", AP_TRAPEZOID)])
def test_hand_computed_map_and_cmc(ap, per_query):
    """mAP follows the AP definition asked for; mAP_torchreid, the CMC and the counts do not depend on it."""
    result = _evaluate(ap=ap)
    assert result["ap_definition"] == ap and ap in format_table(result) and "1 skipped" in format_table(result)
    assert result["mAP"] == pytest.approx(100 * np.mean(per_query))
    assert result["mAP_torchreid"] == pytest.approx(100 * np.mean(AP_PLAIN))
    assert result["rank1"] == pytest.approx(100 * 2 / 3)
    assert result["rank5"] == pytest.approx(100.0)
    assert result["rank10"] == pytest.approx(100.0)
    assert result["cmc"][:2] == pytest.approx([100 * 2 / 3, 100.0])
    assert result["n_queries"] == 3 and result["n_queries_skipped"] == 1
    assert result["n_gallery"] == 6 and result["n_gallery_junk"] == 1 and result["n_gallery_distractors"] == 1


def test_per_query_ranking_by_hand():
    keep = G_PIDS != -1
    ranked = rank_queries(DIST[:, keep], Q_PIDS, G_PIDS[keep], Q_CAMS, G_CAMS[keep])
    ok = [0, 1, 3]
    assert ranked["ap_torchreid"][ok] == pytest.approx(AP_PLAIN)
    assert ranked["ap_trapezoid"][ok] == pytest.approx(AP_TRAPEZOID)
    assert ranked["first_hit"].tolist() == [2, 1, 0, 1]
    assert ranked["n_good"].tolist() == [2, 1, 0, 2]


def test_junk_never_counts_and_distractors_do():
    # Moving the junk image to the top changes nothing; moving the distractor down raises q0's AP.
    dist = DIST.copy()
    dist[:, 4] = -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedQueryWarning)
        assert evaluate_rankings(dist, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)["mAP"] == pytest.approx(_evaluate()["mAP"])
        dist[0, 3] = 0.99
        assert evaluate_rankings(dist, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)["mAP"] > _evaluate()["mAP"]


def test_query_without_match_is_warned_and_skipped():
    with pytest.warns(SkippedQueryWarning, match="1 of 4 queries.*q2.jpg"):
        result = evaluate_rankings(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS,
                                   query_names=["q0.jpg", "q1.jpg", "q2.jpg", "q3.jpg"])
    assert result["skipped_queries"] == ["q2.jpg"]


def test_no_evaluable_query_is_an_error():
    with pytest.warns(SkippedQueryWarning), pytest.raises(EvaluationError, match="none of the 1 queries"):
        evaluate_rankings(DIST[2:3], Q_PIDS[2:3], G_PIDS, Q_CAMS[2:3], G_CAMS)
    with pytest.raises(EvaluationError, match="entries"):
        evaluate_rankings(DIST, Q_PIDS[:2], G_PIDS, Q_CAMS, G_CAMS)
    with pytest.raises(EvaluationError, match="ap="):
        evaluate_rankings(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, ap="11-point")


def test_agrees_with_torchreid_on_random_rankings():
    from reid._torchreid import torchreid_module

    eval_market1501 = torchreid_module("torchreid.reid.metrics.rank").eval_market1501
    rng = np.random.default_rng(0)
    g_pids = rng.integers(1, 15, 300)
    g_pids[:20] = 0
    g_cams = rng.integers(0, 6, 300)
    q_pids = rng.choice(g_pids[g_pids > 0], 40)
    q_cams = rng.integers(0, 6, 40)
    dist = rng.random((40, 300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedQueryWarning)
        result = evaluate_rankings(dist, q_pids, g_pids, q_cams, g_cams)
    ranked = rank_queries(dist, q_pids, g_pids, q_cams, g_cams)
    ok = ranked["n_good"] > 0
    cmc, mean_ap = eval_market1501(dist[ok], q_pids[ok], g_pids, q_cams[ok], g_cams, 50)
    assert result["mAP"] == pytest.approx(100 * mean_ap)
    assert np.nanmean(ranked["ap_torchreid"][ok]) == pytest.approx(mean_ap)
    assert result["cmc"] == pytest.approx(100 * np.asarray(cmc), abs=1e-4)
    assert result["mAP_trapezoid"] < result["mAP_torchreid"]
