"""What the engine will feed the model, without the model: tokens, spans, truncation.

:class:`PairPlanner` does the engine's steps 1-2 for a chunk of pairs: unique queries and
documents are tokenised once each (documents only as far as they can matter), queries are
checked, and each pair becomes its document span(s): the truncated document, windows, or the
BM25-best window. The engine runs the model on the planned rows; the server calls
:meth:`PairPlanner.count` for per-request token figures that are, by construction, the
engine's own.

Example:
    >>> planner = PairPlanner(PairTokenizer(hf_tok), max_length=256)  # doctest: +SKIP
    >>> planner.count(["what is bm25"], ["BM25 is a ranking function"], None).tokens  # doctest: +SKIP
    array([12])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from crossrank.errors import ConfigError, require_positive
from crossrank.inference.batching import prefetch
from crossrank.inference.passages import (
    PassageConfig,
    Spans,
    bm25_best_spans,
    clipped_by_windows,
    window_spans,
)
from crossrank.inference.tokenize import EncodedTexts, PairTokenizer, validate_texts


@dataclass(frozen=True, slots=True, eq=False)
class PairTokens:
    """Per pair: model-input tokens (special tokens and every window included), and whether
    the document lost text (truncation, or windows capped by ``max_windows``)."""

    tokens: np.ndarray
    truncated: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class PlannedChunk:
    """Tokenised texts of a chunk of pairs and the document spans (model input rows) to score.

    ``q_of``/``d_of`` map each pair to its unique query/document; ``spans.owner`` maps each
    row to its pair (within the chunk).
    """

    queries: EncodedTexts
    docs: EncodedTexts
    q_of: np.ndarray
    d_of: np.ndarray
    spans: Spans
    truncated: np.ndarray
    num_special: int

    @property
    def pairs(self) -> int:
        return len(self.q_of)

    def row_lengths(self) -> np.ndarray:
        """Model-input tokens of each row: special tokens + query + document span."""
        q_len = self.queries.tokens.lengths[self.q_of[self.spans.owner]]
        return self.num_special + q_len + self.spans.end - self.spans.start

    def pair_tokens(self) -> PairTokens:
        """Tokens per pair (summed over its rows) and truncation flags."""
        per_pair = np.bincount(self.spans.owner, weights=self.row_lengths(), minlength=self.pairs)
        return PairTokens(per_pair.astype(np.int64), self.truncated)


class PairPlanner:
    """Tokenises pairs chunk by chunk and picks the spans the model sees; no model involved."""

    def __init__(
        self,
        tokenizer: PairTokenizer,
        max_length: int,
        chunk_pairs: int = 16384,
        first_chunk_pairs: int | None = None,
    ) -> None:
        require_positive("max_length", max_length)
        require_positive("chunk_pairs", chunk_pairs)
        if first_chunk_pairs is not None:
            require_positive("first_chunk_pairs", first_chunk_pairs)
        if max_length <= tokenizer.template.num_special + 1:
            raise ConfigError(f"max_length={max_length} leaves no room for query and document")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.chunk_pairs = chunk_pairs
        self.first_chunk_pairs = first_chunk_pairs

    def count(
        self, queries: Sequence[object], docs: Sequence[object], passages: PassageConfig | None
    ) -> PairTokens:
        """Per-pair token figures of what ``ScoringEngine.score`` would run; no model call.

        Raises ConfigError on the inputs ``score`` refuses (empty or too-long query, ...).
        """
        queries, docs = validate_pairs(queries, docs)
        chunks = [c.pair_tokens() for c in self.chunks(queries, docs, passages, depth=0)]
        if not chunks:
            return PairTokens(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
        return PairTokens(
            np.concatenate([c.tokens for c in chunks]),
            np.concatenate([c.truncated for c in chunks]),
        )

    def chunks(
        self, queries: list[str], docs: list[str], passages: PassageConfig | None, depth: int
    ) -> Iterator[PlannedChunk]:
        """Planned chunks (:func:`chunk_bounds`), in order, up to ``depth`` planned ahead on a
        worker thread (see :func:`~crossrank.inference.batching.prefetch`; close it)."""
        first = self.first_chunk_pairs or self.chunk_pairs
        bounds = chunk_bounds(len(queries), first, self.chunk_pairs)

        def plan(bound: tuple[int, int]) -> PlannedChunk:
            lo, hi = bound
            return self.plan(queries[lo:hi], docs[lo:hi], passages, lo)

        return prefetch(plan, bounds, depth)

    def plan(
        self,
        queries: list[str],
        docs: list[str],
        passages: PassageConfig | None,
        first_index: int = 0,
    ) -> PlannedChunk:
        """Plan one chunk; ``first_index`` (its first pair's index) makes errors name pairs."""
        q_texts, q_of = _factorize(queries)
        d_texts, d_of = _factorize(docs)
        q_enc = self.tokenizer.encode(q_texts, max_tokens=self.max_length)
        room = self._doc_room(q_enc, q_of, first_index)
        d_enc = self.tokenizer.encode(d_texts, max_tokens=_doc_token_cap(room, passages))
        spans, truncated = _spans(q_enc, d_enc, q_of=q_of, d_of=d_of, room=room, passages=passages)
        num_special = self.tokenizer.template.num_special
        return PlannedChunk(q_enc, d_enc, q_of, d_of, spans, truncated, num_special)

    def _doc_room(self, q_enc: EncodedTexts, q_of: np.ndarray, first_index: int) -> np.ndarray:
        """Document tokens that fit beside each pair's query; errors name the bad pair."""
        lengths = q_enc.tokens.lengths
        limit = self.max_length - self.tokenizer.template.num_special
        empty = np.flatnonzero(lengths == 0)
        if len(empty):
            pair = first_index + int(np.argmax(np.isin(q_of, empty)))
            raise ConfigError(
                f"query of pair {pair} is empty (no tokens); an empty query cannot be scored"
            )
        too_long = np.flatnonzero(q_enc.clipped | (lengths >= limit))
        if len(too_long):
            pair = first_index + int(np.argmax(np.isin(q_of, too_long)))
            raise ConfigError(
                f"query of pair {pair} has {int(lengths[too_long[0]])}+ tokens: with "
                f"max_length {self.max_length} no document token fits beside it "
                "(queries are never truncated); raise max_length or shorten the query"
            )
        return limit - lengths[q_of]


def chunk_bounds(total: int, first: int, most: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` of consecutive chunks covering ``total`` pairs: the first ``first`` long,
    each next one twice the one before, none over ``most``.

    A small first chunk lets the model start early: the next chunk is tokenised while the
    current one is scored, but nothing overlaps the first chunk's tokenisation.

    >>> chunk_bounds(4000, 512, 4096)
    [(0, 512), (512, 1536), (1536, 3584), (3584, 4000)]
    """
    bounds: list[tuple[int, int]] = []
    lo, size = 0, min(first, most)
    while lo < total:
        bounds.append((lo, min(lo + size, total)))
        lo, size = lo + size, min(2 * size, most)
    return bounds


def validate_pairs(
    queries: Sequence[object], docs: Sequence[object]
) -> tuple[list[str], list[str]]:
    """Aligned query and document texts as ``str`` lists; ConfigError names a bad one."""
    if len(queries) != len(docs):
        raise ConfigError(f"got {len(queries)} queries but {len(docs)} documents")
    return validate_texts(queries, "query"), validate_texts(docs, "document")


def _spans(
    q_enc: EncodedTexts,
    d_enc: EncodedTexts,
    *,
    q_of: np.ndarray,
    d_of: np.ndarray,
    room: np.ndarray,
    passages: PassageConfig | None,
) -> tuple[Spans, np.ndarray]:
    """Document spans to score, and which pairs lose document text."""
    n = len(room)
    d_len = d_enc.tokens.lengths[d_of]
    d_clipped = d_enc.clipped[d_of]
    if passages is None:
        end = np.minimum(d_len, room)
        return Spans(np.arange(n), np.zeros(n, dtype=np.int64), end), (d_len > room) | d_clipped
    window = np.minimum(passages.window, room)
    firstp = passages.mode == "windows" and passages.aggregate == "firstp"
    spans = window_spans(d_len, window, passages.stride, 1 if firstp else passages.max_windows)
    if passages.mode == "windows":
        return spans, clipped_by_windows(d_len, spans, n) | d_clipped
    q, d = q_enc.tokens, d_enc.tokens
    best = bm25_best_spans(
        spans,
        doc_ids=d.ids,
        doc_start=d.offsets[d_of],
        query_ids=q.ids,
        query_start=q.offsets[q_of],
        query_len=q.lengths[q_of],
    )
    return best, (d_len > window) | d_clipped


def _factorize(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Unique texts in first-seen order and each text's index among them."""
    unique = list(dict.fromkeys(texts))
    lookup = {text: i for i, text in enumerate(unique)}
    return unique, np.fromiter(map(lookup.__getitem__, texts), dtype=np.int64, count=len(texts))


def _doc_token_cap(room: np.ndarray, passages: PassageConfig | None) -> int | None:
    """How many document tokens can matter (None: all, for unbounded windowing)."""
    widest = int(room.max(initial=0))
    if passages is None:
        return widest
    window = min(passages.window, widest)
    if passages.mode == "windows" and passages.aggregate == "firstp":
        return window
    if passages.max_windows is not None:
        return (passages.max_windows - 1) * passages.stride + window
    return None
