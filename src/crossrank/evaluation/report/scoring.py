"""Score the first stage's candidates once per re-ranker configuration, and time it.

A configuration is one (max length, backend) pair of the re-ranker. Its candidate pairs
(every judged query's top ``top_k``) are scored in **one** bulk call, which is both the
throughput measurement and the source of every depth's ranking (see
:func:`crossrank.evaluation.tradeoff.rerank_at_depth`). Latency is then measured per depth
on the sampled queries only: one call per query scoring its top-k candidates.

The dual encoder scores the same candidates from the corpus embeddings the dense retriever
already holds; its latency per query is one query encoding plus the candidates' dot
products.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from crossrank.data.types import Run
from crossrank.errors import ConfigError
from crossrank.evaluation.efficiency import (
    LatencyResult,
    ModelSize,
    PowerModel,
    ThroughputResult,
    measure_latency,
    measure_throughput,
    model_size,
    scorer_calls,
)
from crossrank.inference import CrossEncoder
from crossrank.inference.backends.onnx_export import ensure_onnx
from crossrank.models.loading import find_weight_files
from crossrank.retrieval.dense import DenseRetriever

__all__ = [
    "Candidates",
    "DualIndex",
    "DualScores",
    "ScoredConfig",
    "dual_latency",
    "dual_scores",
    "score_config",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class Candidates:
    """Each query's top candidates, best first: pairs ``offsets[i]:offsets[i+1]`` are qid i's."""

    qids: tuple[str, ...]
    doc_ids: tuple[str, ...]
    offsets: np.ndarray

    @classmethod
    def from_run(cls, run: Run, qids: Sequence[str], top_k: int) -> Candidates:
        """Top ``top_k`` of each of ``qids`` (score descending, ties by doc id descending)."""
        doc_ids: list[str] = []
        offsets = [0]
        for qid in qids:
            ranking = run.get(qid, {})
            best = sorted(ranking, key=lambda d: (ranking[d], d), reverse=True)[:top_k]
            doc_ids += best
            offsets.append(len(doc_ids))
        if not doc_ids:
            raise ConfigError("the first stage returned no candidate for any judged query")
        return cls(tuple(qids), tuple(doc_ids), np.asarray(offsets, dtype=np.int64))

    def top(self, index: int, depth: int) -> list[str]:
        """Doc ids of query ``index``'s best ``depth`` candidates."""
        lo, hi = int(self.offsets[index]), int(self.offsets[index + 1])
        return list(self.doc_ids[lo : min(hi, lo + depth)])

    def pair_query_ids(self) -> list[str]:
        counts = np.diff(self.offsets)
        return np.repeat(np.asarray(self.qids, dtype=object), counts).tolist()

    def as_run(self, scores: np.ndarray) -> Run:
        """``{qid: {doc: score}}`` of flat pair scores aligned with ``doc_ids``."""
        values = scores.tolist()
        lo = self.offsets.tolist()
        return {
            qid: dict(zip(self.doc_ids[lo[i] : lo[i + 1]], values[lo[i] : lo[i + 1]], strict=True))
            for i, qid in enumerate(self.qids)
        }


@dataclass(frozen=True, slots=True, eq=False)
class ScoredConfig:
    """One re-ranker configuration: candidate scores, bulk throughput, latency per depth."""

    name: str
    max_length: int
    backend: str
    scores: Run
    throughput: ThroughputResult
    latency: dict[int, LatencyResult]
    size: ModelSize


def score_config(
    model: CrossEncoder,
    cands: Candidates,
    *,
    texts: tuple[Mapping[str, str], Mapping[str, str]],
    sample: Sequence[str],
    depths: Sequence[int],
    power: PowerModel,
) -> ScoredConfig:
    """Bulk-score every candidate pair once, then time each depth on ``sample`` queries."""
    queries, docs = texts
    pair_q = [queries[q] for q in cands.pair_query_ids()]
    pair_d = [docs[d] for d in cands.doc_ids]
    scores, throughput = measure_throughput(model, pair_q, pair_d, device=model.device,
                                            power=power)  # fmt: skip
    name = f"CE[L={model.max_length},{model.backend}]"
    logger.info("%s: %d pairs in %.1fs (%.1f pairs/s)", name, throughput.pairs,
                throughput.cost.wall_s, throughput.pairs_per_s)  # fmt: skip
    position = {qid: i for i, qid in enumerate(cands.qids)}
    latency = {}
    for depth in depths:
        groups = []
        for qid in sample:
            top = cands.top(position[qid], depth)
            groups.append(([queries[qid]] * len(top), [docs[d] for d in top]))
        latency[depth] = measure_latency(scorer_calls(model, groups),
                                         pairs=[len(g[1]) for g in groups], device=model.device)  # fmt: skip
    return ScoredConfig(name, model.max_length, model.backend, cands.as_run(scores), throughput,
                        latency, _size(model))  # fmt: skip


def _size(model: CrossEncoder) -> ModelSize:
    """Parameters of the torch module; on disk, the files the backend actually loads."""
    if model.backend in ("onnx", "onnx-int8"):
        files = [ensure_onnx(model.model, "int8" if model.backend == "onnx-int8" else "fp32")]
    else:
        files = find_weight_files(model.model.source)
    return model_size(model.model.module, files)


@dataclass(frozen=True, slots=True, eq=False)
class DualIndex:
    """A dense retriever's corpus embeddings, addressable by document id."""

    retriever: DenseRetriever
    row_of: dict[str, int]

    @classmethod
    def of(cls, retriever: DenseRetriever) -> DualIndex:
        return cls(retriever, {d: i for i, d in enumerate(retriever.doc_ids)})

    def rows(self, doc_ids: Sequence[str]) -> np.ndarray:
        missing = next((d for d in doc_ids if d not in self.row_of), None)
        if missing is not None:
            raise ConfigError(f"candidate {missing!r} is not in the dense index")
        return np.fromiter((self.row_of[d] for d in doc_ids), dtype=np.int64, count=len(doc_ids))


@dataclass(frozen=True, slots=True, eq=False)
class DualScores:
    """The dual encoder on the same candidates: its scores and its latency per depth."""

    name: str
    scores: Run
    latency: dict[int, LatencyResult]


def dual_scores(index: DualIndex, cands: Candidates, queries: Mapping[str, str]) -> Run:
    """Inner products of each query embedding with its candidates' corpus embeddings."""
    rows = index.rows(cands.doc_ids)
    q_emb = index.retriever.encoder.encode([queries[q] for q in cands.qids])
    owner = np.repeat(np.arange(len(cands.qids)), np.diff(cands.offsets))
    scores = np.einsum("ij,ij->i", q_emb[owner], index.retriever.embeddings[rows])
    return cands.as_run(scores.astype(np.float64))


def dual_latency(
    index: DualIndex,
    cands: Candidates,
    queries: Mapping[str, str],
    sample: Sequence[str],
    depths: Sequence[int],
) -> dict[int, LatencyResult]:
    """Per depth: one query encoding plus the dot products with its top-k embeddings."""
    position = {qid: i for i, qid in enumerate(cands.qids)}
    embeddings, encoder = index.retriever.embeddings, index.retriever.encoder
    out = {}
    for depth in depths:
        calls, pairs = [], []
        for qid in sample:
            rows = index.rows(cands.top(position[qid], depth))
            calls.append(lambda t=queries[qid], r=rows: embeddings[r] @ encoder.encode([t])[0])
            pairs.append(len(rows))
        out[depth] = measure_latency(calls, pairs=pairs, device=str(encoder.device))
    return out
