"""``crossrank.CrossEncoder``: load a checkpoint, then predict, rank and rerank.

Example:
    >>> from crossrank import CrossEncoder
    >>> ce = CrossEncoder.from_pretrained("path/to/model", max_length=256)  # doctest: +SKIP
    >>> ce.predict([("what is bm25", "BM25 is a ranking function ...")])  # doctest: +SKIP
    array([2.71], dtype=float32)
    >>> ce.rank("what is bm25", ["BM25 is ...", "Cats are ..."], top_k=1)  # doctest: +SKIP
    [RankedDoc(index=0, score=2.71)]
    >>> ce.last_stats.pairs_per_s  # doctest: +SKIP
    41.3
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossrank.data.types import Run
from crossrank.errors import ConfigError, require_positive
from crossrank.inference.backends import (
    build_backend,
    check_device,
    default_device,
    default_token_budget,
)
from crossrank.inference.engine import EngineSettings, InferenceStats, ScoringEngine
from crossrank.inference.passages import PassageConfig
from crossrank.inference.planning import PairTokens
from crossrank.inference.tokenize import PairTokenizer
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import Activation, HeadLayout, HeadSpec

logger = logging.getLogger(__name__)
DEFAULT_MAX_LENGTH = 512
GPU_CHUNK_PAIRS = 4096
CPU_CHUNK_PAIRS = 16384


@dataclass(frozen=True, slots=True)
class RankedDoc:
    """One entry of :meth:`CrossEncoder.rank`: position in the input list and score."""

    index: int
    score: float


class CrossEncoder:
    """A cross-encoder with a fast inference engine; build it with :meth:`from_pretrained`.

    ``last_stats`` holds the :class:`~crossrank.inference.engine.InferenceStats` of the most
    recent scoring call (pairs, truncated pairs, sequences, batches, seconds, pairs/s).
    """

    def __init__(
        self,
        model: CrossEncoderModel,
        *,
        backend: str = "auto",
        device: str | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        token_budget: int | None = None,
        cache_dir: str | Path | None = None,
        cuda_graphs: bool = False,
    ) -> None:
        device = check_device(device) if device is not None else default_device()
        if threads is not None:
            require_positive("threads", threads)
        limit = model.max_positions
        max_length = min(DEFAULT_MAX_LENGTH, limit) if max_length is None else max_length
        require_positive("max_length", max_length)
        if max_length > limit:
            raise ConfigError(f"max_length={max_length} exceeds the model's {limit} positions")
        self.model = model
        self.device = device
        self.max_length = max_length
        self._backend = build_backend(
            model,
            backend,
            device,
            threads=threads,
            cache_dir=Path(cache_dir) if cache_dir else None,
            cuda_graphs=cuda_graphs,
        )
        if backend == "auto":
            logger.info("crossrank backend auto -> %s on %s", self._backend.name, device)
        on_gpu = device != "cpu"
        settings = EngineSettings(
            max_length=max_length,
            token_budget=token_budget if token_budget is not None else default_token_budget(device),
            pad_multiple=8 if on_gpu else 1,
            # Smaller chunks on a GPU let the next chunk's tokenisation (the host's bottleneck,
            # ~1,000 pairs/s per core) overlap the current chunk's forward passes. A smaller
            # first chunk (EngineSettings.first_chunk_pairs) measured slower on an H200 in
            # three sessions (BENCHMARKS.md), with CUDA graphs too, so not for slow launches;
            # why is still open.
            chunk_pairs=GPU_CHUNK_PAIRS if on_gpu else CPU_CHUNK_PAIRS,
        )
        self._engine = ScoringEngine(
            PairTokenizer(model.tokenizer), self._backend, model.heads, settings
        )
        self.last_stats: InferenceStats | None = None

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        heads: Sequence[HeadSpec] | HeadLayout | None = None,
        backend: str = "auto",
        device: str | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        token_budget: int | None = None,
        trust_remote_code: bool = False,
        cache_dir: str | Path | None = None,
        seed: int = 0,
        revision: str | None = None,
        cuda_graphs: bool = False,
    ) -> CrossEncoder:
        """Load a sequence-classification checkpoint or plain encoder (safetensors only).

        ``backend``: ``auto`` (default; exact on CPU), ``torch``, ``torch-bf16``,
        ``torch-fp16``, ``onnx``, ``onnx-int8``. ``device`` defaults to CUDA when available.
        ``max_length`` defaults to min(512, model positions). ``threads`` defaults to the
        physical cores (ONNX) or torch's own choice. ``token_budget`` caps padded tokens per
        batch (default 2048 on CPU, 65536 on GPU). ``cache_dir`` holds exported ONNX graphs.
        ``cuda_graphs`` (torch backends on CUDA) replays one captured CUDA graph per batch shape:
        more pairs per host CPU-second, not more pairs/s on an H200 (BENCHMARKS.md).
        """
        model = CrossEncoderModel.from_pretrained(
            name_or_path,
            heads=heads,
            trust_remote_code=trust_remote_code,
            seed=seed,
            revision=revision,
        )
        return cls(
            model,
            backend=backend,
            device=device,
            max_length=max_length,
            threads=threads,
            token_budget=token_budget,
            cache_dir=cache_dir,
            cuda_graphs=cuda_graphs,
        )

    @property
    def backend(self) -> str:
        """The concrete backend in use (``auto`` resolved)."""
        return self._backend.name

    @property
    def heads(self) -> HeadLayout:
        return self.model.heads

    def predict(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        passages: PassageConfig | None = None,
        activation: Activation = "none",
        progress: bool = False,
    ) -> np.ndarray:
        """Ranking scores (primary head) of ``(query, document)`` pairs, in input order.

        ``passages`` enables windowed scoring of long documents (default: truncate the
        document, never the query). ``activation="sigmoid"`` turns a binary head's logits
        into probabilities. An empty document is scored like any other; an empty query
        raises ConfigError.
        """
        return self.predict_heads(
            pairs, passages=passages, activation=activation, progress=progress
        )[self.heads.primary]

    def count_tokens(
        self, pairs: Sequence[tuple[str, str]], *, passages: PassageConfig | None = None
    ) -> PairTokens:
        """Model-input tokens per pair and whether each document would lose text, as
        :meth:`predict` would score them, without running the model.

        >>> ce.count_tokens([("q", "a long document ...")]).truncated  # doctest: +SKIP
        array([False])
        """
        queries, docs = _split_pairs(pairs)
        return self._engine.count_tokens(queries, docs, passages)

    def predict_heads(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        passages: PassageConfig | None = None,
        activation: Activation = "none",
        progress: bool = False,
    ) -> dict[str, np.ndarray]:
        """Scores of every head (multi-task checkpoints), each aligned with ``pairs``."""
        queries, docs = _split_pairs(pairs)
        result = self._engine.score(
            queries, docs, passages=passages, activation=activation, progress=progress
        )
        self.last_stats = result.stats
        return result.heads

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        """:class:`~crossrank.protocols.Scorer` protocol: scores of aligned lists."""
        result = self._engine.score(queries, docs)
        self.last_stats = result.stats
        return result.heads[self.heads.primary]

    def rank(
        self,
        query: str,
        docs: Sequence[str],
        top_k: int | None = None,
        *,
        passages: PassageConfig | None = None,
    ) -> list[RankedDoc]:
        """``docs`` sorted by score (ties keep input order), the best ``top_k`` when given."""
        if top_k is not None:
            require_positive("top_k", top_k)
        docs = list(docs)
        result = self._engine.score([query] * len(docs), docs, passages=passages)
        self.last_stats = result.stats
        scores = result.heads[self.heads.primary]
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [RankedDoc(int(i), float(scores[i])) for i in order]

    def rerank(
        self,
        run: Run,
        queries: Mapping[str, str],
        docs: Mapping[str, str],
        top_k: int = 100,
        *,
        passages: PassageConfig | None = None,
        progress: bool = False,
    ) -> Run:
        """Rescore each query's ``top_k`` first-stage candidates; return only those.

        Candidates are taken by first-stage score (ties by doc id); all pairs of all queries
        are scored in one bulk call. Queries of the run missing from ``queries``, or
        candidates missing from ``docs``, raise ConfigError naming them.
        """
        require_positive("top_k", top_k)
        qids, dids = _candidates(run, queries, docs, top_k)
        scores = self.predict(
            [(queries[q], docs[d]) for q, d in zip(qids, dids, strict=True)],
            passages=passages,
            progress=progress,
        )
        out: Run = {qid: {} for qid in run}
        for qid, did, score in zip(qids, dids, scores.tolist(), strict=True):
            out[qid][did] = score
        return out

    def save_pretrained(self, directory: str | Path) -> Path:
        """Save in the plain Hugging Face layout (see :meth:`CrossEncoderModel.save_pretrained`)."""
        return self.model.save_pretrained(directory)


def _split_pairs(pairs: Sequence[tuple[str, str]]) -> tuple[list[object], list[object]]:
    """Query and document columns of ``pairs``; ConfigError unless every pair has two items."""
    if isinstance(pairs, str | bytes):
        raise ConfigError("pairs must be a sequence of (query, document) tuples, got a string")
    pairs = list(pairs)
    if not pairs:
        return [], []
    try:
        columns = list(zip(*pairs, strict=True))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"pairs must all be (query, document) tuples: {err}") from err
    if len(columns) != 2:
        raise ConfigError(f"pairs must be (query, document) tuples, got {len(columns)} items each")
    return list(columns[0]), list(columns[1])


def _candidates(
    run: Run, queries: Mapping[str, str], docs: Mapping[str, str], top_k: int
) -> tuple[list[str], list[str]]:
    """Aligned (query id, doc id) lists of each query's top_k candidates."""
    qids: list[str] = []
    dids: list[str] = []
    for qid, ranking in run.items():
        if qid not in queries:
            raise ConfigError(f"query {qid!r} is in the run but not in queries")
        best = sorted(ranking.items(), key=lambda item: (-item[1], item[0]))[:top_k]
        missing = [d for d, _ in best if d not in docs]
        if missing:
            raise ConfigError(
                f"query {qid!r}: candidate documents missing from docs: {missing[:5]}"
            )
        qids.extend([qid] * len(best))
        dids.extend(d for d, _ in best)
    return qids, dids
