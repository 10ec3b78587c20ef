"""Query features and buckets, per-bucket gaps, depth re-ranking and the break-even depth."""

from __future__ import annotations

import numpy as np
import pytest

from crossrank.errors import ConfigError
from crossrank.evaluation.confidence import bootstrap_ci
from crossrank.evaluation.metrics import evaluate
from crossrank.evaluation.significance import compare
from crossrank.evaluation.tradeoff import (
    DepthPoint,
    QueryFeatures,
    break_even_depth,
    feature_buckets,
    gap_rows,
    query_features,
    query_terms,
    rerank_at_depth,
)

QUERIES = {"q1": "aspirin bleeding risk", "q2": "the sleep of cats", "q3": "statins"}
DOCS = {
    "d1": "Aspirin raises the risk of major bleeding.",
    "d2": "Risk factors.",
    "d3": "Cats sleep all day.",
    "d4": "Unrelated text.",
}
QRELS = {"q1": {"d1": 2, "d2": 1}, "q2": {"d3": 1, "d4": 0}, "q3": {"d4": 0}}


def test_query_terms_drop_stopwords_and_case() -> None:
    assert query_terms("The Sleep of CATS, the cats") == frozenset({"sleep", "cats"})
    assert query_terms("the of and") == frozenset()


def test_query_features_take_the_best_relevant_document() -> None:
    feats = query_features(QUERIES, DOCS, QRELS)
    assert list(feats) == ["q1", "q2"]  # q3 has no relevant judgment
    assert feats["q1"] == QueryFeatures(length=3, overlap=1.0, n_relevant=2)  # d1 has all 3
    assert feats["q2"] == QueryFeatures(length=4, overlap=1.0, n_relevant=1)
    partial = query_features({"q": "aspirin bleeding risk"}, {"d": "Risk only."}, {"q": {"d": 1}})
    assert partial["q"].overlap == pytest.approx(1 / 3)


def test_query_features_name_missing_texts() -> None:
    with pytest.raises(ConfigError, match="'q1'"):
        query_features({}, DOCS, QRELS)
    with pytest.raises(ConfigError, match="'d1'"):
        query_features(QUERIES, {"d2": "x"}, {"q1": {"d1": 1}})
    with pytest.raises(ConfigError, match="no qrels query"):
        query_features(QUERIES, DOCS, {"q3": {"d4": 0}})


def test_buckets_cut_terciles_and_relevant_counts() -> None:
    lengths = [1, 2, 2, 3, 5, 8, 8, 9, 13]
    feats = {f"q{i}": QueryFeatures(n, i / 10, [1, 2, 5][i % 3]) for i, n in enumerate(lengths)}
    buckets = feature_buckets(feats)
    by_feature: dict[str, list] = {}
    for b in buckets:
        by_feature.setdefault(b.feature, []).append(b)
    assert by_feature["all"][0].query_ids == tuple(feats)
    cuts = np.quantile(lengths, [1 / 3, 2 / 3])
    for bucket in by_feature["length"]:
        values = [feats[q].length for q in bucket.query_ids]
        assert bucket.label == (f"{min(values)}-{max(values)}" if min(values) != max(values)
                                else f"{min(values)}")  # fmt: skip
    low = by_feature["length"][0]
    assert all(feats[q].length <= cuts[0] for q in low.query_ids)  # on a cut -> lower group
    for feature in ("length", "overlap"):
        ids = [q for b in by_feature[feature] for q in b.query_ids]
        assert sorted(ids) == sorted(feats)  # a partition
    assert [b.label for b in by_feature["n_relevant"]] == ["1", "2", "3+"]
    assert [len(b.query_ids) for b in by_feature["n_relevant"]] == [3, 3, 3]


def test_ties_merge_tercile_groups() -> None:
    feats = {f"q{i}": QueryFeatures(4, 0.5, 1) for i in range(6)}
    buckets = feature_buckets(feats)
    assert [(b.feature, b.label, len(b.query_ids)) for b in buckets] == [
        ("all", "all", 6), ("length", "4", 6), ("overlap", "0.50", 6), ("n_relevant", "1", 6),
    ]  # fmt: skip


def test_gap_rows_match_direct_statistics() -> None:
    rng = np.random.default_rng(1)
    qids = [f"q{i}" for i in range(12)]
    values = {
        name: dict(zip(qids, rng.random(12).tolist(), strict=True))
        for name in ("bm25", "dual", "cross")
    }
    feats = {q: QueryFeatures(i, i / 12, 1 + i % 2) for i, q in enumerate(qids)}
    rows = gap_rows(values, feature_buckets(feats), cross="cross", dual="dual", baseline="bm25",
                    n_samples=500)  # fmt: skip
    overall = rows[0]
    gaps = {q: values["cross"][q] - values["dual"][q] for q in qids}
    ci = bootstrap_ci(gaps, 500)
    assert (overall.feature, overall.n_queries) == ("all", 12)
    assert overall.gap == pytest.approx(np.mean(list(gaps.values())))
    assert (overall.gap_low, overall.gap_high) == pytest.approx((ci.low, ci.high))
    (vs_dual,) = compare({"dual": values["dual"], "cross": values["cross"]}, "dual", metric="m")
    assert overall.p_cross_vs_dual == pytest.approx(vs_dual.p_value)
    vs_base = compare(values, "bm25", metric="m")
    assert (overall.p_dual_vs_baseline, overall.p_cross_vs_baseline) == pytest.approx(
        tuple(r.p_adjusted for r in vs_base)
    )
    assert overall.baseline_mean == pytest.approx(np.mean(list(values["bm25"].values())))


def test_gap_rows_without_statistics_for_single_query_buckets() -> None:
    values = {n: {"q1": 0.1, "q2": 0.5} for n in ("bm25", "dual", "cross")}
    feats = {"q1": QueryFeatures(1, 0.0, 1), "q2": QueryFeatures(9, 1.0, 3)}
    rows = gap_rows(values, feature_buckets(feats), cross="cross", dual="dual", baseline="bm25")
    single = [r for r in rows if r.n_queries == 1]
    assert single and all(r.gap_low is None and r.p_cross_vs_dual is None for r in single)
    with pytest.raises(ConfigError, match="must differ"):
        gap_rows(values, [], cross="cross", dual="cross", baseline="bm25")
    with pytest.raises(ConfigError, match="'q2'"):
        gap_rows({**values, "cross": {"q1": 0.1}}, feature_buckets(feats), cross="cross",
                 dual="dual", baseline="bm25")  # fmt: skip


FIRST = {"q": {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0}}
CROSS = {"q": {"a": 0.1, "b": 0.9, "c": 0.5, "d": 2.0, "e": 3.0}}


def _order(run: dict[str, dict[str, float]]) -> list[str]:
    ranking = run["q"]
    return sorted(ranking, key=lambda d: (ranking[d], d), reverse=True)


def test_rerank_at_depth_reorders_the_head_only() -> None:
    assert _order(rerank_at_depth(FIRST, CROSS, 0)) == ["a", "b", "c", "d", "e"]
    assert _order(rerank_at_depth(FIRST, CROSS, 3)) == ["b", "c", "a", "d", "e"]
    assert _order(rerank_at_depth(FIRST, CROSS, 5)) == ["e", "d", "b", "c", "a"]
    assert _order(rerank_at_depth(FIRST, CROSS, 50)) == ["e", "d", "b", "c", "a"]
    partial = {"q": {"a": 0.1, "b": 0.9}}  # scores only for the top 2 suffice for depth 2
    assert _order(rerank_at_depth(FIRST, partial, 2)) == ["b", "a", "c", "d", "e"]


def test_rerank_at_depth_breaks_ties_like_trec_eval() -> None:
    tied = {"q": {"a": 1.0, "b": 1.0, "c": 1.0}}
    assert _order(rerank_at_depth(tied, {"q": {"a": 0.0, "b": 0.0, "c": 0.0}}, 3)) == [
        "c", "b", "a",
    ]  # fmt: skip


def test_rerank_at_depth_evaluates_like_the_reordered_run() -> None:
    qrels = {"q": {"e": 1, "b": 1}}
    derived = evaluate(rerank_at_depth(FIRST, CROSS, 3), qrels, ["nDCG@10"]).means["nDCG@10"]
    manual = {"q": {"b": 5.0, "c": 4.0, "a": 3.0, "d": 2.0, "e": 1.0}}
    assert derived == pytest.approx(evaluate(manual, qrels, ["nDCG@10"]).means["nDCG@10"])


def test_rerank_at_depth_errors() -> None:
    with pytest.raises(ConfigError, match="'a'"):
        rerank_at_depth(FIRST, {"q": {"b": 1.0}}, 2)
    with pytest.raises(ConfigError, match="depth"):
        rerank_at_depth(FIRST, CROSS, -1)


def test_break_even_depth_definition() -> None:
    flat = [DepthPoint(0, 0.6, 0.0), DepthPoint(10, 0.7, 0.5), DepthPoint(50, 0.7, 2.0)]
    assert break_even_depth(flat) == 10
    # A dip followed by a larger gain: the deeper depth still pays from 10.
    dip = [DepthPoint(0, 0.6, 0.0), DepthPoint(10, 0.7, 1.0), DepthPoint(20, 0.69, 2.0),
           DepthPoint(50, 0.75, 5.0)]  # fmt: skip
    assert break_even_depth(dip) == 50
    assert break_even_depth(dip, min_gain_per_s=0.03) == 10  # 0.05 gain over 4 s is too little
    useless = [DepthPoint(0, 0.7, 0.0), DepthPoint(10, 0.65, 1.0)]
    assert break_even_depth(useless) == 0
    noisy = [DepthPoint(0, 0.6, 0.0), DepthPoint(10, 0.7, 2.0), DepthPoint(20, 0.71, 1.9)]
    assert break_even_depth(noisy, min_gain_per_s=0.04) == 20  # a gain at no extra latency pays


def test_break_even_depth_validation() -> None:
    with pytest.raises(ConfigError, match="include 0"):
        break_even_depth([DepthPoint(10, 0.7, 1.0)])
    with pytest.raises(ConfigError, match="distinct"):
        break_even_depth([DepthPoint(0, 0.6, 0.0), DepthPoint(0, 0.6, 0.0)])
    with pytest.raises(ConfigError, match="min_gain_per_s"):
        break_even_depth([DepthPoint(0, 0.6, 0.0)], min_gain_per_s=-1.0)
