"""Long documents: overlapping token windows, per-document aggregation, BM25-best passage.

All functions here are pure and vectorised over many (query, document) pairs at once, so the
engine scores the windows of every document in the same length-bucketed batches.

* :func:`window_spans`: windows of ``window`` document tokens every ``stride`` tokens (the
  query is repeated in every window by the engine). A document no longer than one window
  gives exactly one span, so short documents cost exactly one pair.
* :func:`aggregate`: MaxP, FirstP, SumP, AvgP or top-k mean of window scores per pair.
* :func:`bm25_best_spans`: query-aware truncation, i.e. keep the one window with the highest
  BM25 score against the query (terms are the model's token ids; document frequencies come
  from the windows of the same document, so the choice never depends on other pairs).

Example:
    >>> spans = window_spans(np.array([5, 300]), window=128, stride=64)
    >>> spans.owner.tolist(), spans.start.tolist(), spans.end.tolist()
    ([0, 1, 1, 1, 1], [0, 0, 64, 128, 192], [5, 128, 192, 256, 300])
    >>> aggregate(np.array([1.0, 0.2, 0.9, 0.1, 0.3]), spans.owner, 2, "maxp").tolist()
    [1.0, 0.8999999761581421]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from crossrank.errors import ConfigError, require_positive

Aggregate = Literal["maxp", "firstp", "sump", "avgp", "topk_mean"]
PassageMode = Literal["windows", "bm25"]
AGGREGATES: tuple[str, ...] = ("maxp", "firstp", "sump", "avgp", "topk_mean")
PASSAGE_MODES: tuple[str, ...] = ("windows", "bm25")
BM25_K1 = 0.9
BM25_B = 0.4


@dataclass(frozen=True, slots=True)
class PassageConfig:
    """How to score documents longer than the model's input.

    ``mode="windows"`` scores every window (``window`` document tokens, a new one every
    ``stride`` tokens) and aggregates per document with ``aggregate`` (``k`` for
    ``topk_mean``). ``mode="bm25"`` scores only the window with the best BM25 match to the
    query. ``max_windows`` caps windows per document (later text is ignored and the pair
    counts as truncated). Windows shrink for long queries so query + window always fit.

    >>> PassageConfig(window=128, stride=64, aggregate="maxp")
    PassageConfig(window=128, stride=64, aggregate='maxp', k=3, mode='windows', max_windows=None)
    """

    window: int = 128
    stride: int = 64
    aggregate: Aggregate = "maxp"
    k: int = 3
    mode: PassageMode = "windows"
    max_windows: int | None = None

    def __post_init__(self) -> None:
        require_positive("window", self.window)
        require_positive("stride", self.stride)
        require_positive("k", self.k)
        if self.stride > self.window:
            raise ConfigError(
                f"stride ({self.stride}) must not exceed window ({self.window}): text would be skipped"
            )
        if self.aggregate not in AGGREGATES:
            raise ConfigError(f"aggregate must be one of {AGGREGATES}, got {self.aggregate!r}")
        if self.mode not in PASSAGE_MODES:
            raise ConfigError(f"mode must be one of {PASSAGE_MODES}, got {self.mode!r}")
        if self.max_windows is not None:
            require_positive("max_windows", self.max_windows)


@dataclass(frozen=True, slots=True)
class Spans:
    """Document token ranges ``[start, end)``; ``owner[i]`` is the pair span i belongs to.

    Spans of one owner are contiguous and in document order.
    """

    owner: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.owner)


def window_spans(
    doc_lengths: np.ndarray,
    window: int | np.ndarray,
    stride: int | np.ndarray,
    max_windows: int | None = None,
) -> Spans:
    """Overlapping windows over each document (``window``/``stride`` may differ per pair).

    Window i starts at ``i * stride``; the last window is the first that reaches the end.
    """
    lengths = np.asarray(doc_lengths, dtype=np.int64)
    window = np.broadcast_to(np.asarray(window, dtype=np.int64), lengths.shape)
    stride = np.minimum(np.broadcast_to(np.asarray(stride, dtype=np.int64), lengths.shape), window)
    if np.any(window <= 0):
        raise ConfigError("every window must hold at least one document token")
    count = 1 + np.maximum(-(-(lengths - window) // stride), 0)
    if max_windows is not None:
        count = np.minimum(count, max_windows)
    owner = np.repeat(np.arange(len(lengths)), count)
    index = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    start = index * stride[owner]
    end = np.minimum(start + window[owner], lengths[owner])
    return Spans(owner, start, end)


def clipped_by_windows(doc_lengths: np.ndarray, spans: Spans, n_owners: int) -> np.ndarray:
    """True for owners whose spans do not reach the end of the document (``max_windows``)."""
    last_end = np.zeros(n_owners, dtype=np.int64)
    np.maximum.at(last_end, spans.owner, spans.end)
    return last_end < np.asarray(doc_lengths, dtype=np.int64)


def aggregate(
    scores: np.ndarray, owner: np.ndarray, n_owners: int, method: Aggregate, k: int = 3
) -> np.ndarray:
    """Per-owner aggregate of span scores; ``owner`` groups must be contiguous and non-empty."""
    if method not in AGGREGATES:
        raise ConfigError(f"aggregate must be one of {AGGREGATES}, got {method!r}")
    scores = np.asarray(scores, dtype=np.float32)
    counts = np.bincount(owner, minlength=n_owners)
    if np.any(counts == 0):
        raise ConfigError("every pair needs at least one window score")
    starts = np.cumsum(counts) - counts
    if method == "maxp":
        return np.maximum.reduceat(scores, starts)
    if method == "firstp":
        return scores[starts]
    sums = np.add.reduceat(scores.astype(np.float64), starts)
    if method == "sump":
        return sums.astype(np.float32)
    if method == "avgp":
        return (sums / counts).astype(np.float32)
    # top-k mean: rank spans within their owner by score, average the best min(k, count).
    order = np.lexsort((-scores, owner))
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    keep = order[rank < k]
    top = np.bincount(owner[keep], weights=scores[keep].astype(np.float64), minlength=n_owners)
    return (top / np.minimum(counts, k)).astype(np.float32)


def bm25_best_spans(
    spans: Spans,
    *,
    doc_ids: np.ndarray,
    doc_start: np.ndarray,
    query_ids: np.ndarray,
    query_start: np.ndarray,
    query_len: np.ndarray,
) -> Spans:
    """The one span per owner with the highest BM25 score against that owner's query.

    Owner o's document tokens start at ``doc_ids[doc_start[o]]`` and its query tokens are
    ``query_ids[query_start[o]:query_start[o] + query_len[o]]``. Ties go to the earliest
    span, so an owner whose query matches nothing keeps its first span.
    """
    n_owners = len(doc_start)
    span_scores = _bm25_span_scores(
        spans,
        doc_ids=doc_ids,
        doc_start=doc_start,
        query_ids=query_ids,
        query_start=query_start,
        query_len=query_len,
    )
    order = np.lexsort((np.arange(len(spans)), -span_scores, spans.owner))
    counts = np.bincount(spans.owner, minlength=n_owners)
    best = order[np.cumsum(counts) - counts]
    return Spans(spans.owner[best], spans.start[best], spans.end[best])


def _bm25_span_scores(
    spans: Spans,
    *,
    doc_ids: np.ndarray,
    doc_start: np.ndarray,
    query_ids: np.ndarray,
    query_start: np.ndarray,
    query_len: np.ndarray,
) -> np.ndarray:
    n_owners = len(doc_start)
    lengths = spans.end - spans.start
    span_of = np.repeat(np.arange(len(spans)), lengths)
    owner_of = spans.owner[span_of]
    tokens = doc_ids[doc_start[owner_of] + spans.start[span_of] + _within(lengths)]
    # Keys (owner, token) make "token is a term of this owner's query" one np.isin call.
    vocab = int(max(doc_ids.max(initial=0), query_ids.max(initial=0))) + 1
    q_owner = np.repeat(np.arange(n_owners), query_len)
    q_keys = np.unique(q_owner * vocab + query_ids[query_start[q_owner] + _within(query_len)])
    hit = np.isin(owner_of * vocab + tokens, q_keys)
    # Term frequency per (span, term); document frequency per (owner, term) over its spans.
    span_term, tf = np.unique(span_of[hit] * vocab + tokens[hit], return_counts=True)
    span_idx, term = span_term // vocab, span_term % vocab
    span_owner = spans.owner[span_idx]
    _, ot_inverse, df = np.unique(
        span_owner * vocab + term, return_inverse=True, return_counts=True
    )
    n_spans = np.bincount(spans.owner, minlength=n_owners)
    df = df[ot_inverse]
    idf = np.log1p((n_spans[span_owner] - df + 0.5) / (df + 0.5))
    avg_len = np.bincount(spans.owner, weights=lengths, minlength=n_owners) / np.maximum(n_spans, 1)
    norm = 1 - BM25_B + BM25_B * lengths[span_idx] / np.maximum(avg_len[span_owner], 1)
    gain = idf * tf * (BM25_K1 + 1) / (tf + BM25_K1 * norm)
    return np.bincount(span_idx, weights=gain, minlength=len(spans))


def _within(lengths: np.ndarray) -> np.ndarray:
    """Position of each element inside its row, for rows of the given lengths."""
    return np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
