"""The scoring pipeline: validate, tokenise in bulk, window, bucket, run, aggregate.

``ScoringEngine.score`` takes aligned query/document lists and returns every head's score
per pair plus :class:`InferenceStats`. Per chunk of pairs (bounded memory on huge runs):

1. unique queries and documents are tokenised once each (documents only as far as needed);
2. each pair becomes one input row (truncation: the document is cut, never the query) or
   several (windows), or its BM25-best window;
3. rows are length-bucketed into batches under a token budget and run on the backend;
4. head scores are computed from logits, windows are aggregated per pair, order restored.

Example:
    >>> engine = ScoringEngine(PairTokenizer(hf_tok), backend, heads, EngineSettings(256))  # doctest: +SKIP
    >>> result = engine.score(["q"], ["a document"])  # doctest: +SKIP
    >>> result.stats.pairs  # doctest: +SKIP
    1
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from crossrank.errors import ConfigError, require_positive
from crossrank.inference.backends.base import Backend
from crossrank.inference.batching import plan_batches
from crossrank.inference.passages import (
    PassageConfig,
    Spans,
    aggregate,
    bm25_best_spans,
    clipped_by_windows,
    window_spans,
)
from crossrank.inference.tokenize import EncodedTexts, PairTokenizer, validate_texts
from crossrank.models.heads import Activation, HeadLayout


@dataclass(frozen=True, slots=True)
class InferenceStats:
    """What one scoring call did. ``sequences`` counts model inputs (windows included)."""

    pairs: int = 0
    truncated_pairs: int = 0
    sequences: int = 0
    batches: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    seconds: float = 0.0

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else 0.0

    def __add__(self, other: InferenceStats) -> InferenceStats:
        return InferenceStats(
            self.pairs + other.pairs,
            self.truncated_pairs + other.truncated_pairs,
            self.sequences + other.sequences,
            self.batches + other.batches,
            self.tokens + other.tokens,
            self.padded_tokens + other.padded_tokens,
            self.seconds + other.seconds,
        )


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Input length, batching and chunking limits of a :class:`ScoringEngine`."""

    max_length: int
    token_budget: int = 2048
    max_batch_size: int | None = None
    pad_multiple: int = 1
    chunk_pairs: int = 16384

    def __post_init__(self) -> None:
        require_positive("max_length", self.max_length)
        require_positive("token_budget", self.token_budget)
        require_positive("pad_multiple", self.pad_multiple)
        require_positive("chunk_pairs", self.chunk_pairs)
        if self.max_batch_size is not None:
            require_positive("max_batch_size", self.max_batch_size)


@dataclass(frozen=True, slots=True)
class ScoredPairs:
    """Per-head scores aligned with the input pairs, and the call's statistics."""

    heads: dict[str, np.ndarray]
    stats: InferenceStats = field(default_factory=InferenceStats)


class ScoringEngine:
    """Scores (query, document) pairs with a backend; see the module docstring."""

    def __init__(
        self,
        tokenizer: PairTokenizer,
        backend: Backend,
        heads: HeadLayout,
        settings: EngineSettings,
    ) -> None:
        if settings.max_length <= tokenizer.template.num_special + 1:
            raise ConfigError(
                f"max_length={settings.max_length} leaves no room for query and document"
            )
        self.tokenizer = tokenizer
        self.backend = backend
        self.heads = heads
        self.settings = settings

    def score(
        self,
        queries: Sequence[object],
        docs: Sequence[object],
        *,
        passages: PassageConfig | None = None,
        activation: Activation = "none",
        progress: bool = False,
    ) -> ScoredPairs:
        """Score aligned pairs ``(queries[i], docs[i])``; every head, input order."""
        if len(queries) != len(docs):
            raise ConfigError(f"got {len(queries)} queries but {len(docs)} documents")
        queries = validate_texts(queries, "query")
        docs = validate_texts(docs, "document")
        step = self.settings.chunk_pairs
        parts: list[ScoredPairs] = []
        unit = "pair" if passages is None or passages.mode == "bm25" else "seq"
        with tqdm(total=0, unit=unit, disable=not progress, desc="scoring") as bar:
            for lo in range(0, len(queries), step):
                chunk = self._encode_chunk(
                    queries[lo : lo + step], docs[lo : lo + step], lo, passages
                )
                parts.append(self._score_chunk(chunk, passages, activation, bar))
        if not parts:
            return ScoredPairs({h.name: np.zeros(0, dtype=np.float32) for h in self.heads.heads})
        heads = {name: np.concatenate([p.heads[name] for p in parts]) for name in parts[0].heads}
        stats = sum((p.stats for p in parts[1:]), parts[0].stats)
        return ScoredPairs(heads, stats)

    def _encode_chunk(
        self, queries: list[str], docs: list[str], first_index: int, passages: PassageConfig | None
    ) -> _Chunk:
        """Tokenise the unique texts of a chunk (documents only as far as they can matter)."""
        started = time.perf_counter()
        q_texts, q_of = _factorize(queries)
        d_texts, d_of = _factorize(docs)
        q_enc = self.tokenizer.encode(q_texts, max_tokens=self.settings.max_length)
        room = self._doc_room(q_enc, q_of, first_index)
        d_enc = self.tokenizer.encode(d_texts, max_tokens=_doc_token_cap(room, passages))
        return _Chunk(q_enc, d_enc, q_of, d_of, room, started)

    def _score_chunk(
        self, chunk: _Chunk, passages: PassageConfig | None, activation: Activation, bar: tqdm
    ) -> ScoredPairs:
        spans, truncated = self._spans(chunk, passages)
        bar.total += len(spans)
        bar.refresh()
        logits, batches, tokens, padded = self._run_rows(chunk, spans, bar)
        heads = self.heads.scores(logits, activation)
        n_pairs = len(chunk.room)
        if passages is not None and passages.mode == "windows":
            heads = {
                name: aggregate(s, spans.owner, n_pairs, passages.aggregate, passages.k)
                for name, s in heads.items()
            }
        seconds = time.perf_counter() - chunk.started
        stats = InferenceStats(
            n_pairs, int(truncated.sum()), len(spans), batches, tokens, padded, seconds
        )
        return ScoredPairs(heads, stats)

    def _doc_room(self, q_enc: EncodedTexts, q_of: np.ndarray, first_index: int) -> np.ndarray:
        """Document tokens that fit beside each pair's query; errors name the bad pair."""
        lengths = q_enc.tokens.lengths
        limit = self.settings.max_length - self.tokenizer.template.num_special
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
                f"max_length={self.settings.max_length} no document token fits beside it "
                "(queries are never truncated); raise max_length or shorten the query"
            )
        return limit - lengths[q_of]

    def _spans(self, chunk: _Chunk, passages: PassageConfig | None) -> tuple[Spans, np.ndarray]:
        """Document spans to score, and which pairs lose document text."""
        room, n = chunk.room, len(chunk.room)
        d_len = chunk.docs.tokens.lengths[chunk.d_of]
        d_clipped = chunk.docs.clipped[chunk.d_of]
        if passages is None:
            end = np.minimum(d_len, room)
            return Spans(np.arange(n), np.zeros(n, dtype=np.int64), end), (d_len > room) | d_clipped
        window = np.minimum(passages.window, room)
        firstp = passages.mode == "windows" and passages.aggregate == "firstp"
        spans = window_spans(d_len, window, passages.stride, 1 if firstp else passages.max_windows)
        if passages.mode == "windows":
            return spans, clipped_by_windows(d_len, spans, n) | d_clipped
        q, d = chunk.queries.tokens, chunk.docs.tokens
        best = bm25_best_spans(
            spans,
            doc_ids=d.ids,
            doc_start=d.offsets[chunk.d_of],
            query_ids=q.ids,
            query_start=q.offsets[chunk.q_of],
            query_len=q.lengths[chunk.q_of],
        )
        return best, (d_len > window) | d_clipped

    def _run_rows(self, chunk: _Chunk, spans: Spans, bar: tqdm) -> tuple[np.ndarray, int, int, int]:
        """Logits of every span row (input order), batch count, real and padded tokens."""
        s = self.settings
        queries, docs = chunk.queries.tokens, chunk.docs.tokens
        q_index, d_index = chunk.q_of[spans.owner], chunk.d_of[spans.owner]
        lengths = (
            self.tokenizer.template.num_special + queries.lengths[q_index] + spans.end - spans.start
        )
        batches = plan_batches(
            lengths, s.token_budget, max_batch_size=s.max_batch_size, pad_multiple=s.pad_multiple
        )
        logits = np.empty((len(lengths), self.heads.num_labels), dtype=np.float32)
        padded = 0
        for rows in batches:
            batch = self.tokenizer.assemble(
                queries,
                docs,
                query_index=q_index[rows],
                doc_index=d_index[rows],
                doc_start=spans.start[rows],
                doc_end=spans.end[rows],
                pad_multiple=s.pad_multiple,
            )
            logits[rows] = self.backend.forward(batch)
            padded += batch.input_ids.size
            bar.update(len(rows))
        return logits, len(batches), int(lengths.sum()), padded


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Tokenised texts of one chunk of pairs; ``q_of``/``d_of`` map pairs to unique texts."""

    queries: EncodedTexts
    docs: EncodedTexts
    q_of: np.ndarray
    d_of: np.ndarray
    room: np.ndarray  # document tokens that fit beside each pair's query
    started: float


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
