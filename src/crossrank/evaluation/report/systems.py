"""First-stage systems of a report: their runs and their per-query latency.

BM25, dense and hybrid are built here with the same defaults as ``crossrank retrieve``
(hybrid: reciprocal-rank fusion of BM25 and dense, each retrieving max(top_k, 100)).
``run:PATH`` systems are read from disk and have no latency.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossrank.data import read_run
from crossrank.data.types import Collection, Run
from crossrank.errors import ConfigError
from crossrank.evaluation.efficiency import LatencyResult, measure_latency
from crossrank.evaluation.report.config import ReportConfig, SystemSpec
from crossrank.inference.backends import default_device
from crossrank.protocols import Retriever
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.retrieval.dense import DenseRetriever
from crossrank.retrieval.encoder import DenseConfig, DenseEncoder
from crossrank.retrieval.fusion import HybridRetriever

__all__ = ["FirstStage", "Retrievers"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class FirstStage:
    """A first-stage run and its latency on the sampled queries (None for ``run:`` files)."""

    name: str
    description: str
    run: Run
    latency: LatencyResult | None


class Retrievers:
    """Builds each first-stage retriever once, on first use."""

    def __init__(self, collection: Collection, config: ReportConfig, progress: bool) -> None:
        self.collection = collection
        self.config = config
        self.progress = progress
        self._built: dict[str, Retriever] = {}

    def bm25(self) -> BM25Retriever:
        if "bm25" not in self._built:
            started = time.perf_counter()
            self._built["bm25"] = BM25Retriever.build(self.collection.corpus)
            logger.info("bm25: indexed in %.1fs", time.perf_counter() - started)
        return self._built["bm25"]  # type: ignore[return-value]

    def dense(self) -> DenseRetriever:
        if "dense" not in self._built:
            started = time.perf_counter()
            config = DenseConfig(self.config.dense_model, self.config.dense_max_length)
            self._built["dense"] = DenseRetriever.build(
                self.collection.corpus,
                DenseEncoder(config, device=self._device("dense")),
                cache_dir=self.config.dense_cache_dir,
                show_progress=self.progress,
            )
            logger.info("dense: corpus embeddings ready in %.1fs", time.perf_counter() - started)
        return self._built["dense"]  # type: ignore[return-value]

    def _device(self, kind: str) -> str:
        # The bi-encoder runs where the re-ranker runs, so their latencies compare; BM25 is CPU.
        return "cpu" if kind == "bm25" else self.config.device or default_device()

    def retriever(self, kind: str) -> Retriever:
        if kind == "bm25":
            return self.bm25()
        if kind == "dense":
            return self.dense()
        if kind == "hybrid":
            depth = max(self.config.top_k, 100)
            return HybridRetriever([self.bm25(), self.dense()], method="rrf", depth=depth)
        raise ConfigError(f"{kind!r} is not a first-stage retriever")

    def first_stage(
        self, spec: SystemSpec, queries: Mapping[str, str], sample: Sequence[str]
    ) -> FirstStage:
        """Run ``spec`` over ``queries``; time it one query at a time on ``sample``."""
        if spec.kind == "run":
            return _from_file(spec, queries)
        retriever = self.retriever(spec.kind)
        top_k = self.config.top_k
        started = time.perf_counter()
        run = retriever.retrieve(queries, top_k)
        logger.info("%s: retrieved %d queries in %.1fs", spec.name, len(run),
                    time.perf_counter() - started)  # fmt: skip
        calls = [lambda q=q: retriever.retrieve({q: queries[q]}, top_k) for q in sample]
        latency = measure_latency(calls, device=self._device(spec.kind))
        return FirstStage(spec.name, self.describe(spec.kind), run, latency)

    def describe(self, kind: str) -> str:
        dense = (
            f"bi-encoder `{self.config.dense_model}` (max length "
            f"{self.config.dense_max_length}), exact inner-product search"
        )
        return {
            "bm25": "BM25 (bm25s, k1 0.9, b 0.4, English stopwords and stemmer), title + text",
            "dense": dense,
            "hybrid": "reciprocal-rank fusion (k = 60) of BM25 and dense",
        }[kind]


def _from_file(spec: SystemSpec, queries: Mapping[str, str]) -> FirstStage:
    path = Path(spec.path) if spec.path is not None else Path()
    run = read_run(path)
    kept = {qid: ranking for qid, ranking in run.items() if qid in queries}
    if not kept:
        raise ConfigError(f"run {path} answers none of the split's queries")
    return FirstStage(spec.name, f"TREC run `{path}`", kept, None)
