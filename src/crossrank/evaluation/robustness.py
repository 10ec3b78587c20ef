"""Robustness suite: re-rank the same candidates with perturbed queries or documents.

:func:`run_robustness` scores each query's top-k candidates once on the original texts
and once per perturbation (see :mod:`crossrank.evaluation.perturbations`), with one
batched scorer call per condition, then reports the metric before and after and the
**rank-flip rate**: for each query, the fraction of document pairs among the original
top ``flip_depth`` (10) whose relative order is inverted after the perturbation (a
normalised Kendall-tau distance restricted to the original top 10), averaged over the
queries with at least two candidates. Rankings order by score, ties by document id
descending, as trec_eval does. Each document is perturbed once, whichever queries
retrieved it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from crossrank.data.text import split_sentences
from crossrank.data.types import Qrels, Run
from crossrank.errors import ConfigError, require_positive
from crossrank.evaluation.metrics import evaluate, parse_metrics
from crossrank.evaluation.perturbations import (
    PERTURBATIONS,
    PerturbationSpec,
    Target,
    check_strength,
)
from crossrank.protocols import Scorer

__all__ = ["RobustnessResult", "run_robustness"]

_POOL_DOCS = 1000  # documents sampled for the irrelevant-sentence pool


@dataclass(frozen=True, slots=True)
class RobustnessResult:
    """One perturbation's effect: metric mean ``before``/``after`` (``delta = after -
    before``), rank-flip rate, and the fraction of target texts it actually changed."""

    perturbation: str
    target: Target
    metric: str
    before: float
    after: float
    delta: float
    flip_rate: float
    changed_fraction: float
    n_queries: int


@dataclass(frozen=True, slots=True, eq=False)
class _Candidates:
    """Flattened candidate pairs, grouped by query: pairs offsets[i]:offsets[i+1] are qids[i]'s."""

    qids: list[str]
    query_texts: list[str]
    doc_ids: np.ndarray  # unique candidate ids, sorted
    doc_texts: list[str]
    pair_query: np.ndarray
    pair_doc: np.ndarray
    offsets: np.ndarray


def run_robustness(
    scorer: Scorer,
    run: Run,
    queries: Mapping[str, str],
    docs: Mapping[str, str],
    qrels: Qrels,
    *,
    perturbations: Sequence[str | PerturbationSpec],
    top_k: int = 100,
    seed: int = 0,
    metric: str = "nDCG@10",
    strength: float = 0.2,
    flip_depth: int = 10,
) -> list[RobustnessResult]:
    """Re-rank each judged query's top ``top_k`` run candidates under each perturbation.

    Only run queries with a relevant qrels judgment are scored, and the metric is
    evaluated on exactly those. Each perturbation draws from a generator seeded with
    ``(seed, name)``, so its result does not depend on the other perturbations listed.

    >>> class Overlap:
    ...     def score(self, qs, ds):
    ...         return np.array([len(set(q.split()) & set(d.split())) for q, d in zip(qs, ds)])
    >>> [r] = run_robustness(Overlap(), {"q": {"a": 1.0, "b": 0.5}}, {"q": "red cat"},
    ...     {"a": "red cat", "b": "blue dog"}, {"q": {"a": 1}}, perturbations=["identity"])
    >>> (r.before, r.delta, r.flip_rate)
    (1.0, 0.0, 0.0)
    """
    specs = [_resolve(p) for p in perturbations]
    if not specs:
        raise ConfigError("perturbations must name at least one perturbation")
    metric = str(parse_metrics([metric])[0])
    _check_settings(scorer, top_k, flip_depth, strength)
    cands = _candidates(run, queries, docs, qrels, top_k)
    judged = {qid: qrels[qid] for qid in cands.qids}
    base, before = _rerank(scorer, cands, judged, metric, (cands.query_texts, cands.doc_texts))
    pool_rng = np.random.default_rng([seed, _crc("pool")])
    pool = _sentence_pool(docs, pool_rng) if any(s.needs_pool for s in specs) else []
    results = []
    for spec in specs:
        on_query = spec.target == "query"
        originals = cands.query_texts if on_query else cands.doc_texts
        fn, rng = spec.bind(pool), np.random.default_rng([seed, _crc(spec.name)])
        changed = [fn(text, rng, strength) for text in originals]
        texts = (changed, cands.doc_texts) if on_query else (cands.query_texts, changed)
        scores, after = _rerank(scorer, cands, judged, metric, texts)
        results.append(
            RobustnessResult(
                perturbation=spec.name,
                target=spec.target,
                metric=metric,
                before=before,
                after=after,
                delta=after - before,
                flip_rate=_flip_rate(cands, base, scores, flip_depth),
                changed_fraction=sum(a != b for a, b in zip(changed, originals, strict=True))
                / len(originals),
                n_queries=len(cands.qids),
            )
        )
    return results


def _check_settings(scorer: Scorer, top_k: int, flip_depth: int, strength: float) -> None:
    for name, value in (("top_k", top_k), ("flip_depth", flip_depth)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an int, got {value!r}")
        require_positive(name, value)
    check_strength(strength)
    if not isinstance(scorer, Scorer):
        raise ConfigError(f"scorer must have a score(queries, docs) method, got {scorer!r}")


def _resolve(item: str | PerturbationSpec) -> PerturbationSpec:
    if isinstance(item, PerturbationSpec):
        if item.target not in ("query", "document"):
            raise ConfigError(f"perturbation {item.name!r}: target must be 'query' or 'document'")
        return item
    spec = PERTURBATIONS.get(item) if isinstance(item, str) else None
    if spec is None:
        raise ConfigError(f"unknown perturbation {item!r}; choose from {sorted(PERTURBATIONS)}")
    return spec


def _candidates(
    run: Run, queries: Mapping[str, str], docs: Mapping[str, str], qrels: Qrels, top_k: int
) -> _Candidates:
    qids = [
        q for q, ranked in run.items() if ranked and any(g > 0 for g in qrels.get(q, {}).values())
    ]
    if not qids:
        raise ConfigError("no run query has a relevant judgment in the qrels")
    pair_qids: list[int] = []
    pair_ids: list[str] = []
    for i, qid in enumerate(qids):
        if not isinstance(queries.get(qid), str):
            raise ConfigError(f"query {qid!r} of the run has no text in queries")
        ranked = run[qid]
        ids = np.array(list(ranked), dtype=str)
        scores = np.fromiter(ranked.values(), dtype=np.float64, count=len(ids))
        if not np.isfinite(scores).all():
            raise ConfigError(f"run scores of query {qid!r} must be finite")
        top = _order(scores, ids)[:top_k]
        pair_ids += ids[top].tolist()
        pair_qids += [i] * len(top)
    missing = next((d for d in pair_ids if not isinstance(docs.get(d), str)), None)
    if missing is not None:
        raise ConfigError(f"candidate document {missing!r} has no text in docs")
    doc_ids, pair_doc = np.unique(np.array(pair_ids, dtype=str), return_inverse=True)
    pair_query = np.array(pair_qids, dtype=np.int64)
    offsets = np.searchsorted(pair_query, np.arange(len(qids) + 1))
    doc_texts = [docs[d] for d in doc_ids.tolist()]
    query_texts = [queries[q] for q in qids]
    return _Candidates(qids, query_texts, doc_ids, doc_texts, pair_query, pair_doc, offsets)


def _rerank(
    scorer: Scorer,
    cands: _Candidates,
    qrels: Qrels,
    metric: str,
    texts: tuple[list[str], list[str]],
) -> tuple[np.ndarray, float]:
    """Score every candidate pair in one scorer call; return the scores and the metric mean."""
    q_texts, d_texts = texts
    pair_q = np.array(q_texts, dtype=object)[cands.pair_query].tolist()
    pair_d = np.array(d_texts, dtype=object)[cands.pair_doc].tolist()
    scores = np.asarray(scorer.score(pair_q, pair_d), dtype=np.float64)
    if scores.shape != (len(pair_q),):
        raise ConfigError(f"scorer returned shape {scores.shape} for {len(pair_q)} pairs")
    if not np.isfinite(scores).all():
        raise ConfigError("scorer returned non-finite scores")
    return scores, evaluate(_as_run(cands, scores), qrels, [metric]).means[metric]


def _as_run(cands: _Candidates, scores: np.ndarray) -> Run:
    ids = cands.doc_ids[cands.pair_doc].tolist()
    values = scores.tolist()
    lo = cands.offsets
    return {
        qid: dict(zip(ids[lo[i] : lo[i + 1]], values[lo[i] : lo[i + 1]], strict=True))
        for i, qid in enumerate(cands.qids)
    }


def _order(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Indices by score descending, ties by id descending (trec_eval's order)."""
    return np.lexsort((ids, scores))[::-1]


def _flip_rate(cands: _Candidates, before: np.ndarray, after: np.ndarray, depth: int) -> float:
    rates = []
    for lo, hi in zip(cands.offsets[:-1].tolist(), cands.offsets[1:].tolist(), strict=True):
        if hi - lo < 2:
            continue  # a single candidate has no pair to flip
        ids = cands.doc_ids[cands.pair_doc[lo:hi]]
        top = _order(before[lo:hi], ids)[:depth]  # original top-depth, best first
        rank_after = np.empty(hi - lo, dtype=np.int64)
        rank_after[_order(after[lo:hi], ids)] = np.arange(hi - lo)
        r = rank_after[top]
        i, j = np.triu_indices(r.size, k=1)
        rates.append(float(np.mean(r[i] > r[j])))  # i ranked above j before: inverted?
    return float(np.mean(rates)) if rates else 0.0


def _sentence_pool(docs: Mapping[str, str], rng: np.random.Generator) -> list[str]:
    ids = list(docs)
    sample = rng.choice(len(ids), size=min(_POOL_DOCS, len(ids)), replace=False)
    pool = [s for k in np.sort(sample).tolist() for s in split_sentences(docs[ids[k]])]
    if not pool:
        raise ConfigError("doc_append_irrelevant: the documents hold no sentence to append")
    return pool


def _crc(name: str) -> int:
    # A stable hash: Python's str hash changes between processes.
    return zlib.crc32(name.encode("utf-8"))
