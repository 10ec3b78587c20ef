"""Cross-encoder versus dual-encoder: where the accuracy gap lies and when re-ranking pays.

**Query types.** Each judged query gets three features; queries are grouped by each:

* *length*: number of word tokens (``\\w+``, lower-cased) of the query text; tercile groups.
* *lexical overlap*: the largest, over the query's relevant documents (grade >= 1), fraction
  of the query's distinct content terms (word tokens minus English stopwords) that occur
  in the document's tokens; tercile groups. Low overlap is where lexical first stages fail.
* *relevant documents*: the number of grade >= 1 judgments: 1, 2, 3 or more.

Tercile groups cut at the 1/3 and 2/3 quantiles (a value on a cut goes to the lower group);
a group left empty by ties is dropped, and each label gives the group's own value range.

**Depth.** :func:`rerank_at_depth` re-orders the first ``depth`` first-stage candidates by
their re-ranker scores and keeps the rest in first-stage order below them, so scores
computed once on the top 100 give every depth <= 100 without rescoring.

**Break-even depth.** Given depths ``d_0 = 0 < d_1 < ...`` (0 = no re-ranking) with mean
metric ``m(d)`` and mean re-ranking latency per query ``t(d)`` (seconds), moving from ``d_i``
to a deeper ``d_j`` *pays* when ``m(d_j) - m(d_i) > tau * (t(d_j) - t(d_i))``: the metric
gains more than ``tau`` per extra second of latency (``tau = 0``: it gains at all). The
break-even depth is the smallest ``d_i`` from which no deeper depth pays; re-ranking deeper
than it does not pay. It is 0 when even the shallowest re-ranking does not pay.

Example:
    >>> first = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
    >>> rerank_at_depth(first, {"q": {"a": 0.1, "b": 0.9}}, depth=2)
    {'q': {'b': 3.0, 'a': 2.0, 'c': 1.0}}
    >>> pts = [DepthPoint(0, 0.60, 0.0), DepthPoint(10, 0.70, 0.5), DepthPoint(50, 0.70, 2.0)]
    >>> break_even_depth(pts)
    10
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from crossrank.data.types import Qrels, Run
from crossrank.errors import ConfigError
from crossrank.evaluation.confidence import bootstrap_ci
from crossrank.evaluation.significance import TestName, compare

__all__ = [
    "FEATURES",
    "Bucket",
    "DepthPoint",
    "GapRow",
    "QueryFeatures",
    "break_even_depth",
    "feature_buckets",
    "gap_rows",
    "query_features",
    "query_terms",
    "rerank_at_depth",
]

FEATURES: dict[str, str] = {
    "all": "all queries",
    "length": "query length (tokens)",
    "overlap": "lexical overlap with the best relevant document",
    "n_relevant": "relevant documents per query",
}
_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(STOPWORDS_EN)


@dataclass(frozen=True, slots=True)
class QueryFeatures:
    """Word-token length, best lexical overlap with a relevant document, relevant count."""

    length: int
    overlap: float
    n_relevant: int


@dataclass(frozen=True, slots=True)
class Bucket:
    """A group of queries: the feature it was cut on, a readable label, its query ids."""

    feature: str
    label: str
    query_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GapRow:
    """Metric means of one bucket; ``gap = cross - dual`` with its bootstrap interval.

    ``p_cross_vs_dual`` is a paired test of the two; ``p_dual_vs_baseline`` and
    ``p_cross_vs_baseline`` are Holm-adjusted together. Intervals and p-values are None in
    buckets with fewer than 2 queries.
    """

    feature: str
    bucket: str
    n_queries: int
    baseline_mean: float
    dual_mean: float
    cross_mean: float
    gap: float
    gap_low: float | None
    gap_high: float | None
    p_cross_vs_dual: float | None
    p_dual_vs_baseline: float | None
    p_cross_vs_baseline: float | None


@dataclass(frozen=True, slots=True)
class DepthPoint:
    """Mean metric and mean re-ranking latency per query (seconds) at one depth."""

    depth: int
    metric: float
    latency_s: float


def query_terms(text: str) -> frozenset[str]:
    """Distinct lower-cased word tokens minus English stopwords.

    >>> sorted(query_terms("The risk of bleeding, the RISK"))
    ['bleeding', 'risk']
    """
    return frozenset(t for t in _WORD.findall(text.lower()) if t not in _STOPWORDS)


def query_features(
    queries: Mapping[str, str], docs: Mapping[str, str], qrels: Qrels
) -> dict[str, QueryFeatures]:
    """Features of every qrels query with a relevant judgment, in qrels order.

    >>> f = query_features({"q": "aspirin bleeding risk"}, {"d": "Aspirin raises risk"},
    ...                    {"q": {"d": 1}})["q"]
    >>> (f.length, round(f.overlap, 3), f.n_relevant)
    (3, 0.667, 1)
    """
    out: dict[str, QueryFeatures] = {}
    doc_terms: dict[str, frozenset[str]] = {}
    for qid, judged in qrels.items():
        relevant = [d for d, grade in judged.items() if grade >= 1]
        if not relevant:
            continue
        text = queries.get(qid)
        if not isinstance(text, str):
            raise ConfigError(f"query {qid!r} of the qrels has no text in queries")
        terms = query_terms(text)
        best = 0.0
        for doc_id in relevant:
            if doc_id not in doc_terms:
                if not isinstance(docs.get(doc_id), str):
                    raise ConfigError(f"relevant document {doc_id!r} of {qid!r} has no text")
                doc_terms[doc_id] = frozenset(_WORD.findall(docs[doc_id].lower()))
            if terms:
                best = max(best, len(terms & doc_terms[doc_id]) / len(terms))
        out[qid] = QueryFeatures(len(_WORD.findall(text)), best, len(relevant))
    if not out:
        raise ConfigError("no qrels query has a relevant judgment")
    return out


def feature_buckets(features: Mapping[str, QueryFeatures]) -> list[Bucket]:
    """The ``all`` bucket, then length and overlap terciles, then 1 / 2 / 3+ relevant.

    >>> feats = {f"q{i}": QueryFeatures(i, i / 10, 1 + i % 3) for i in range(1, 7)}
    >>> [(b.feature, b.label) for b in feature_buckets(feats)][:4]
    [('all', 'all'), ('length', '1-2'), ('length', '3-4'), ('length', '5-6')]
    """
    if not features:
        raise ConfigError("no query features to bucket")
    qids = list(features)
    buckets = [Bucket("all", "all", tuple(qids))]
    lengths = np.array([features[q].length for q in qids], dtype=np.float64)
    buckets += _terciles("length", qids, lengths, "{:g}")
    overlaps = np.array([features[q].overlap for q in qids], dtype=np.float64)
    buckets += _terciles("overlap", qids, overlaps, "{:.2f}")
    relevant = np.array([features[q].n_relevant for q in qids])
    for label, mask in (("1", relevant == 1), ("2", relevant == 2), ("3+", relevant >= 3)):
        members = tuple(q for q, m in zip(qids, mask.tolist(), strict=True) if m)
        if members:
            buckets.append(Bucket("n_relevant", label, members))
    return buckets


def _terciles(feature: str, qids: list[str], values: np.ndarray, fmt: str) -> list[Bucket]:
    cuts = np.quantile(values, [1 / 3, 2 / 3])
    group = np.searchsorted(cuts, values, side="left")  # on a cut -> the lower group
    out = []
    for g in range(3):
        mask = group == g
        if mask.any():
            lo, hi = fmt.format(values[mask].min()), fmt.format(values[mask].max())
            label = lo if lo == hi else f"{lo}-{hi}"
            out.append(Bucket(feature, label, tuple(np.asarray(qids)[mask].tolist())))
    return out


def gap_rows(
    per_query: Mapping[str, Mapping[str, float]],
    buckets: Sequence[Bucket],
    *,
    cross: str,
    dual: str,
    baseline: str,
    test: TestName = "t",
    n_samples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[GapRow]:
    """Per-bucket means of ``baseline``, ``dual`` and ``cross`` and the cross - dual gap.

    ``per_query`` maps system -> query id -> metric value and must cover every bucket query.
    """
    if len({cross, dual, baseline}) != 3:
        raise ConfigError(
            f"cross, dual and baseline must differ, got {cross!r}, {dual!r}, {baseline!r}"
        )
    for name in (cross, dual, baseline):
        if name not in per_query:
            raise ConfigError(f"system {name!r} has no per-query values")
    names = (baseline, dual, cross)
    stats = (test, n_samples, confidence, seed)
    return [
        _gap_row(bucket, {n: _values(per_query[n], bucket) for n in names}, names, stats)
        for bucket in buckets
    ]


def _gap_row(
    bucket: Bucket,
    values: dict[str, dict[str, float]],
    names: tuple[str, str, str],
    stats: tuple[TestName, int, float, int],
) -> GapRow:
    baseline, dual, cross = names
    test, n_samples, confidence, seed = stats
    gaps = {q: values[cross][q] - values[dual][q] for q in bucket.query_ids}
    low = high = p_gap = p_dual = p_cross = None
    if len(bucket.query_ids) >= 2:
        ci = bootstrap_ci(gaps, n_samples, confidence, seed)
        low, high = ci.low, ci.high
        pair = {dual: values[dual], cross: values[cross]}
        (gap_test,) = compare(pair, dual, metric="gap", test=test, n_samples=n_samples, seed=seed)
        p_gap = gap_test.p_value
        vs_base = compare(values, baseline, metric="vs baseline", test=test,
                          n_samples=n_samples, seed=seed)  # fmt: skip
        p_dual, p_cross = (r.p_adjusted for r in vs_base)
    return GapRow(
        feature=bucket.feature,
        bucket=bucket.label,
        n_queries=len(bucket.query_ids),
        baseline_mean=_mean(values[baseline]),
        dual_mean=_mean(values[dual]),
        cross_mean=_mean(values[cross]),
        gap=_mean(gaps),
        gap_low=low,
        gap_high=high,
        p_cross_vs_dual=p_gap,
        p_dual_vs_baseline=p_dual,
        p_cross_vs_baseline=p_cross,
    )


def _values(per_query: Mapping[str, float], bucket: Bucket) -> dict[str, float]:
    missing = next((q for q in bucket.query_ids if q not in per_query), None)
    if missing is not None:
        raise ConfigError(f"no per-query value for query {missing!r} (bucket {bucket.label!r})")
    return {q: float(per_query[q]) for q in bucket.query_ids}


def _mean(values: Mapping[str, float]) -> float:
    return math.fsum(values.values()) / len(values)


def rerank_at_depth(first_stage: Run, scores: Run, depth: int) -> Run:
    """Each query's top ``depth`` first-stage candidates ordered by ``scores``, then the rest.

    Orders follow trec_eval: score descending, ties by document id descending. The output
    scores are ranks turned into descending numbers (n, n - 1, ..., 1), so the run ranks
    exactly in that order. A top-``depth`` candidate without a score raises ConfigError.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ConfigError(f"depth must be an int >= 0, got {depth!r}")
    out: Run = {}
    for qid, ranking in first_stage.items():
        ordered = _trec_order(ranking)
        head, tail = ordered[:depth], ordered[depth:]
        if head:
            given = scores.get(qid, {})
            missing = next((d for d in head if d not in given), None)
            if missing is not None:
                raise ConfigError(
                    f"query {qid!r}: candidate {missing!r} at depth <= {depth} has no score"
                )
            head = _trec_order({d: given[d] for d in head})
        n = len(ordered)
        out[qid] = {doc: float(n - i) for i, doc in enumerate(head + tail)}
    return out


def _trec_order(ranking: Mapping[str, float]) -> list[str]:
    ids = list(ranking)
    if not ids:
        return []
    values = np.fromiter(ranking.values(), dtype=np.float64, count=len(ids))
    order = np.lexsort((np.array(ids, dtype=str), values))[::-1]
    return [ids[i] for i in order.tolist()]


def break_even_depth(points: Sequence[DepthPoint], min_gain_per_s: float = 0.0) -> int:
    """The depth beyond which re-ranking deeper stops paying (see the module docstring).

    ``points`` must include depth 0 (the first stage: its metric, latency 0).

    >>> pts = [DepthPoint(0, 0.6, 0.0), DepthPoint(10, 0.62, 1.0), DepthPoint(20, 0.63, 2.0)]
    >>> (break_even_depth(pts), break_even_depth(pts, min_gain_per_s=0.015))
    (20, 10)
    """
    if not math.isfinite(min_gain_per_s) or min_gain_per_s < 0:
        raise ConfigError(f"min_gain_per_s must be a finite number >= 0, got {min_gain_per_s!r}")
    ordered = sorted(points, key=lambda p: p.depth)
    depths = [p.depth for p in ordered]
    if len(set(depths)) != len(depths) or not depths or depths[0] != 0:
        raise ConfigError(f"depths must be distinct and include 0 (no re-ranking), got {depths}")

    def pays(here: DepthPoint, there: DepthPoint) -> bool:
        return there.metric - here.metric > min_gain_per_s * (there.latency_s - here.latency_s)

    # The deepest depth always qualifies (nothing deeper can pay), so next() always finds one.
    return next(
        here.depth
        for i, here in enumerate(ordered)
        if not any(pays(here, there) for there in ordered[i + 1 :])
    )
