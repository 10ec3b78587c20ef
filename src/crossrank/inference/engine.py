"""The scoring pipeline: validate, tokenise in bulk, window, bucket, run, aggregate.

``ScoringEngine.score`` takes aligned query/document lists and returns every head's score
per pair plus :class:`InferenceStats`. Per chunk of pairs (bounded memory on huge runs):

1. unique queries and documents are tokenised once each (documents only as far as needed);
2. each pair becomes one input row (truncation: the document is cut, never the query) or
   several (windows), or its BM25-best window;
3. rows are length-bucketed into batches under a token budget and run on the backend;
4. head scores are computed from logits, windows are aggregated per pair, order restored.

Steps 1-2 are :class:`~crossrank.inference.planning.PairPlanner`'s (``count_tokens`` runs
only them). Host work overlaps the model: batches are assembled a few ahead on a worker
thread and streamed to the backend (which, on a GPU, keeps logits on the device until the
chunk ends), and the next chunk is tokenised while the current one is scored.

Example:
    >>> engine = ScoringEngine(PairTokenizer(hf_tok), backend, heads, EngineSettings(256))  # doctest: +SKIP
    >>> result = engine.score(["q"], ["a document"])  # doctest: +SKIP
    >>> result.stats.pairs  # doctest: +SKIP
    1
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm.auto import tqdm

from crossrank.errors import ConfigError, require_positive
from crossrank.inference.backends.base import Backend
from crossrank.inference.batching import plan_batches, prefetch
from crossrank.inference.passages import PassageConfig, aggregate
from crossrank.inference.planning import PairPlanner, PairTokens, PlannedChunk, validate_pairs
from crossrank.inference.tokenize import PairTokenizer, TokenBatch
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
    """Input length, batching and chunking limits of a :class:`ScoringEngine`.

    ``prefetch``: batches assembled ahead on a worker thread while the backend runs (0: none,
    everything on the calling thread, and no chunk tokenised ahead either).
    ``first_chunk_pairs``: size of the first chunk of pairs, the later ones doubling up to
    ``chunk_pairs`` (None: every chunk ``chunk_pairs``); see
    :func:`~crossrank.inference.planning.chunk_bounds`.
    """

    max_length: int
    token_budget: int = 2048
    max_batch_size: int | None = None
    pad_multiple: int = 1
    chunk_pairs: int = 16384
    prefetch: int = 2
    first_chunk_pairs: int | None = None

    def __post_init__(self) -> None:
        require_positive("max_length", self.max_length)
        require_positive("token_budget", self.token_budget)
        require_positive("pad_multiple", self.pad_multiple)
        require_positive("chunk_pairs", self.chunk_pairs)
        if self.first_chunk_pairs is not None:
            require_positive("first_chunk_pairs", self.first_chunk_pairs)
        if self.max_batch_size is not None:
            require_positive("max_batch_size", self.max_batch_size)
        if isinstance(self.prefetch, bool) or not self.prefetch >= 0:
            raise ConfigError(f"prefetch must be >= 0, got {self.prefetch!r}")


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
        self.planner = PairPlanner(
            tokenizer, settings.max_length, settings.chunk_pairs, settings.first_chunk_pairs
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
        started = time.perf_counter()
        queries, docs = validate_pairs(queries, docs)
        parts: list[ScoredPairs] = []
        unit = "pair" if passages is None or passages.mode == "bm25" else "seq"
        # With prefetching on, chunk k+1 is tokenised while chunk k is scored.
        ahead = 1 if self.settings.prefetch else 0
        chunks = self.planner.chunks(queries, docs, passages, depth=ahead)
        with closing(chunks), tqdm(total=0, unit=unit, disable=not progress, desc="scoring") as bar:
            parts.extend(self._score_chunk(chunk, passages, activation, bar) for chunk in chunks)
        if not parts:
            return ScoredPairs({h.name: np.zeros(0, dtype=np.float32) for h in self.heads.heads})
        heads = {name: np.concatenate([p.heads[name] for p in parts]) for name in parts[0].heads}
        stats = sum((p.stats for p in parts[1:]), parts[0].stats)
        # Wall time of the whole call: chunks overlap, so their own times would not add up.
        return ScoredPairs(heads, replace(stats, seconds=time.perf_counter() - started))

    def count_tokens(
        self, queries: Sequence[object], docs: Sequence[object], passages: PassageConfig | None
    ) -> PairTokens:
        """Per-pair model-input tokens and truncation flags of ``score``, without the model.

        >>> engine.count_tokens(["q"], ["a document"], None).tokens  # doctest: +SKIP
        array([6])
        """
        return self.planner.count(queries, docs, passages)

    def _score_chunk(
        self, chunk: PlannedChunk, passages: PassageConfig | None, activation: Activation, bar: tqdm
    ) -> ScoredPairs:
        bar.total += len(chunk.spans)
        bar.refresh()
        lengths = chunk.row_lengths()
        logits, batches, padded = self._run_rows(chunk, lengths, bar)
        heads = self.heads.scores(logits, activation)
        if passages is not None and passages.mode == "windows":
            heads = {
                name: aggregate(s, chunk.spans.owner, chunk.pairs, passages.aggregate, passages.k)
                for name, s in heads.items()
            }
        stats = InferenceStats(
            chunk.pairs,
            int(chunk.truncated.sum()),
            len(chunk.spans),
            batches,
            int(lengths.sum()),
            padded,
        )
        return ScoredPairs(heads, stats)

    def _run_rows(
        self, chunk: PlannedChunk, lengths: np.ndarray, bar: tqdm
    ) -> tuple[np.ndarray, int, int]:
        """Logits of every span row (input order), batch count and padded tokens.

        Batches are assembled ``settings.prefetch`` ahead on a worker thread while the
        backend runs the current one; the backend gets them as one stream.
        """
        s = self.settings
        spans = chunk.spans
        q_index, d_index = chunk.q_of[spans.owner], chunk.d_of[spans.owner]
        batches = plan_batches(
            lengths, s.token_budget, max_batch_size=s.max_batch_size, pad_multiple=s.pad_multiple
        )

        def assemble(rows: np.ndarray) -> TokenBatch:
            return self.tokenizer.assemble(
                chunk.queries.tokens,
                chunk.docs.tokens,
                query_index=q_index[rows],
                doc_index=d_index[rows],
                doc_start=spans.start[rows],
                doc_end=spans.end[rows],
                pad_multiple=s.pad_multiple,
            )

        with closing(prefetch(assemble, batches, s.prefetch)) as stream:
            outputs = self.backend.forward_stream(_with_progress(stream, bar))
        logits = np.empty((len(lengths), self.heads.num_labels), dtype=np.float32)
        padded = 0
        for rows, out in zip(batches, outputs, strict=True):  # one step per batch
            logits[rows] = out
            padded += len(rows) * _padded_width(int(lengths[rows].max()), s.pad_multiple)
        return logits, len(batches), padded


def _with_progress(batches: Iterator[TokenBatch], bar: tqdm) -> Iterator[TokenBatch]:
    """``batches``, advancing ``bar`` by a batch's rows once the backend asks for the next."""
    for batch in batches:
        yield batch
        bar.update(batch.shape[0])


def _padded_width(longest: int, pad_multiple: int) -> int:
    """The width ``PairTokenizer.assemble`` pads a batch with this longest row to."""
    return -(-longest // pad_multiple) * pad_multiple
