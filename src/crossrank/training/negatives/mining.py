"""Model-mined ("adversarial") negatives: the current model's best-scored non-relevant docs.

:func:`mine_corpus` streams a corpus in chunks and keeps a bounded per-query top-k
(:class:`TopK`), so a million-document corpus never becomes a (queries x corpus) matrix.
:func:`mine_candidates` re-scores a candidate pool (e.g. the union of first-stage runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice

import numpy as np

from crossrank.data.types import Qrels, Run
from crossrank.errors import ConfigError, CrossrankError, require_positive
from crossrank.protocols import Scorer

__all__ = ["TopK", "mine_candidates", "mine_corpus", "relevant_ids", "score_run"]


class TopK:
    """Per-row top-k of a stream of scored items in O(rows * k) memory.

    Ties are broken by stream position (earlier wins), so the result equals a full sort
    by ``(-score, position)`` whatever the chunking.

    >>> top = TopK(rows=1, k=2)
    >>> top.push(0, np.array([0.1, 0.9, 0.5]), np.array(["a", "b", "c"], dtype=object))
    >>> top.result(0)
    [('b', 0.9), ('c', 0.5)]
    """

    def __init__(self, rows: int, k: int) -> None:
        require_positive("k", k)
        self.k = k
        self.scores = np.full((rows, k), -np.inf)
        self.positions = np.zeros((rows, k), dtype=np.int64)
        self.ids = np.empty((rows, k), dtype=object)
        self.counts = np.zeros(rows, dtype=np.int64)
        self._seen = np.zeros(rows, dtype=np.int64)

    def push(self, row: int, scores: np.ndarray, ids: np.ndarray) -> None:
        """Merge one chunk of ``scores`` (with aligned ``ids``) into ``row``."""
        n = self.counts[row]
        positions = self._seen[row] + np.arange(len(scores))
        self._seen[row] += len(scores)
        merged_scores = np.concatenate([self.scores[row, :n], scores])
        merged_pos = np.concatenate([self.positions[row, :n], positions])
        merged_ids = np.concatenate([self.ids[row, :n], ids])
        keep = _top_indices(merged_scores, merged_pos, self.k)
        m = len(keep)
        self.scores[row, :m] = merged_scores[keep]
        self.positions[row, :m] = merged_pos[keep]
        self.ids[row, :m] = merged_ids[keep]
        self.counts[row] = m

    def result(self, row: int) -> list[tuple[str, float]]:
        """``(id, score)`` pairs of ``row``, best first."""
        n = self.counts[row]
        return [
            (str(i), float(s)) for i, s in zip(self.ids[row, :n], self.scores[row, :n], strict=True)
        ]


def _top_indices(scores: np.ndarray, positions: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best items ordered by (-score, position), in O(n + k log k)."""
    if len(scores) > k:
        threshold = scores[np.argpartition(-scores, k - 1)[:k]].min()
        above = np.flatnonzero(scores > threshold)
        ties = np.flatnonzero(scores == threshold)
        ties = ties[np.argsort(positions[ties], kind="stable")][: k - len(above)]
        candidates = np.concatenate([above, ties])
    else:
        candidates = np.arange(len(scores))
    order = np.lexsort((positions[candidates], -scores[candidates]))
    return candidates[order]


def _checked_scores(scores: np.ndarray, expected: int, what: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape != (expected,):
        raise CrossrankError(f"scorer returned {scores.size} scores for {expected} pairs ({what})")
    if not np.isfinite(scores).all():
        raise CrossrankError(f"scorer returned non-finite scores ({what})")
    return scores


def relevant_ids(qrels: Qrels | None, qid: str) -> set[str]:
    """Documents judged relevant (grade > 0) for ``qid``; empty without qrels."""
    if qrels is None:
        return set()
    return {doc_id for doc_id, grade in qrels.get(qid, {}).items() if grade > 0}


def mine_corpus(
    queries: Mapping[str, str],
    docs: Iterable[tuple[str, str]],
    scorer: Scorer,
    k: int,
    *,
    qrels: Qrels | None = None,
    chunk_size: int = 4096,
) -> Run:
    """Stream a corpus and keep, per query, the k best-scored non-relevant documents.

    ``docs`` yields ``(doc_id, text)`` (e.g. a million documents from a generator); they
    are scored ``chunk_size`` at a time against one query per scorer call, so memory is
    O(queries * k + chunk_size) and no (queries x corpus) matrix is ever built.

    >>> class Length:
    ...     def score(self, queries, docs):
    ...         return np.array([len(d) for d in docs], dtype=float)
    >>> mine_corpus({"q": "x"}, [("a", "xx"), ("b", "xxxx"), ("c", "x")], Length(), 2)
    {'q': {'b': 4.0, 'a': 2.0}}
    """
    require_positive("k", k)
    require_positive("chunk_size", chunk_size)
    qids = list(queries)
    relevant = [relevant_ids(qrels, qid) for qid in qids]
    top = TopK(len(qids), k)
    stream = iter(docs)
    while chunk := list(islice(stream, chunk_size)):
        ids = np.array([doc_id for doc_id, _ in chunk], dtype=object)
        texts = [text for _, text in chunk]
        index = {doc_id: i for i, doc_id in enumerate(ids)}
        for row, qid in enumerate(qids):
            scores = _checked_scores(
                scorer.score([queries[qid]] * len(texts), texts), len(texts), f"query {qid!r}"
            )
            keep = np.ones(len(texts), dtype=bool)
            keep[[index[d] for d in relevant[row] if d in index]] = False
            top.push(row, scores[keep], ids[keep])
    return {qid: dict(top.result(row)) for row, qid in enumerate(qids)}


def _scored_batches(
    queries: Mapping[str, str],
    run: Run,
    doc_texts: Mapping[str, str],
    scorer: Scorer,
    *,
    batch_size: int,
    skip: Mapping[str, set[str]],
) -> Iterator[tuple[list[tuple[str, str]], np.ndarray]]:
    """Yield ``(pairs, scores)`` for the run's (query, doc) pairs, ``batch_size`` at a time."""
    require_positive("batch_size", batch_size)
    missing_q = [qid for qid in run if qid not in queries]
    missing_d = {d for docs in run.values() for d in docs if d not in doc_texts}
    if missing_q or missing_d:
        raise ConfigError(
            f"no text for queries {missing_q[:3]} / documents {sorted(missing_d)[:3]}"
        )
    pairs = (
        (qid, doc_id)
        for qid, docs in run.items()
        for doc_id in docs
        if doc_id not in skip.get(qid, ())
    )
    while batch := list(islice(pairs, batch_size)):
        raw = scorer.score([queries[q] for q, _ in batch], [doc_texts[d] for _, d in batch])
        yield batch, _checked_scores(raw, len(batch), f"batch starting at query {batch[0][0]!r}")


def score_run(
    queries: Mapping[str, str],
    run: Run,
    doc_texts: Mapping[str, str],
    scorer: Scorer,
    *,
    batch_size: int = 256,
) -> Run:
    """Score every (query, document) pair of ``run`` with ``scorer``, ``batch_size`` at a time.

    >>> class Length:
    ...     def score(self, queries, docs):
    ...         return np.array([len(d) for d in docs], dtype=float)
    >>> score_run({"q": "x"}, {"q": {"a": 0.0}}, {"a": "abc"}, Length())
    {'q': {'a': 3.0}}
    """
    scored: Run = {qid: {} for qid in run}
    for batch, scores in _scored_batches(
        queries, run, doc_texts, scorer, batch_size=batch_size, skip={}
    ):
        for (qid, doc_id), value in zip(batch, scores.tolist(), strict=True):
            scored[qid][doc_id] = value
    return scored


def mine_candidates(
    queries: Mapping[str, str],
    candidates: Run,
    doc_texts: Mapping[str, str],
    scorer: Scorer,
    k: int,
    *,
    qrels: Qrels | None = None,
    batch_size: int = 256,
) -> Run:
    """Re-score a candidate pool with the current model; keep its k best non-relevant docs.

    Pairs are scored ``batch_size`` at a time into a per-query :class:`TopK`, so memory is
    O(queries * k + batch_size) beyond the pool itself; judged-relevant documents are not
    scored at all. Ties keep the pool's order.

    >>> class Length:
    ...     def score(self, queries, docs):
    ...         return np.array([len(d) for d in docs], dtype=float)
    >>> pool = {"q": {"a": 0.0, "b": 0.0, "c": 0.0}}
    >>> texts = {"a": "x", "b": "xxx", "c": "xx"}
    >>> mine_candidates({"q": "x"}, pool, texts, Length(), 1, qrels={"q": {"b": 1}})
    {'q': {'c': 2.0}}
    """
    qids = list(candidates)
    row_of = {qid: row for row, qid in enumerate(qids)}
    skip = {qid: relevant_ids(qrels, qid) for qid in qids}
    top = TopK(len(qids), k)
    for batch, scores in _scored_batches(
        queries, candidates, doc_texts, scorer, batch_size=batch_size, skip=skip
    ):
        rows = np.array([row_of[qid] for qid, _ in batch])
        ids = np.array([doc_id for _, doc_id in batch], dtype=object)
        # Pairs arrive grouped by query: push each query's contiguous segment at once.
        for segment in np.split(np.arange(len(batch)), np.flatnonzero(np.diff(rows)) + 1):
            top.push(int(rows[segment[0]]), scores[segment], ids[segment])
    return {qid: dict(top.result(row)) for row, qid in enumerate(qids)}
