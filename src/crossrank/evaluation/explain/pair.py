"""Whole explanations: attributions, attention and sentence deletion for a pair or a run.

Example:
    >>> encoder = CrossEncoder.from_pretrained("model-dir", backend="torch")  # doctest: +SKIP
    >>> expl = explain_pair(encoder, "what is bm25", "BM25 ranks documents. Cats purr.")  # doctest: +SKIP
    >>> expl.sentences.ranked[0].sentence  # doctest: +SKIP
    'BM25 ranks documents.'
    >>> pages = explain_run(encoder, run, queries, docs, top_n=3)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from crossrank.data.types import Run
from crossrank.errors import ConfigError, require_positive
from crossrank.evaluation.explain.attention import AttentionMap, attention_from_inputs
from crossrank.evaluation.explain.counterfactual import SentenceDeletion, sentence_deletion
from crossrank.evaluation.explain.gradients import (
    IGConfig,
    TokenAttributions,
    attributions_from_inputs,
)
from crossrank.evaluation.explain.inputs import encode_pair
from crossrank.inference.cross_encoder import CrossEncoder


@dataclass(frozen=True, slots=True)
class PairExplanation:
    """Everything explained about one (query, document) pair; ``score`` is the model's."""

    query: str
    doc: str
    score: float
    attributions: TokenAttributions
    attention: AttentionMap
    sentences: SentenceDeletion
    doc_truncated: bool
    query_id: str = ""
    doc_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "query_id": self.query_id,
            "doc_id": self.doc_id,
            "query": self.query,
            "doc": self.doc,
            "score": self.score,
            "doc_truncated": self.doc_truncated,
            "integrated_gradients": self.attributions.to_dict(),
            "attention": self.attention.to_dict(),
            "sentence_deletion": self.sentences.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class RunSelection:
    """Which run entries to explain: each query's ``top_n`` documents, ``max_queries`` queries."""

    top_n: int = 3
    max_queries: int | None = None
    ig: IGConfig = field(default_factory=IGConfig)

    def __post_init__(self) -> None:
        require_positive("top_n", self.top_n)
        if self.max_queries is not None:
            require_positive("max_queries", self.max_queries)


def explain_pair(
    encoder: CrossEncoder,
    query: str,
    doc: str,
    config: IGConfig | None = None,
    *,
    query_id: str = "",
    doc_id: str = "",
) -> PairExplanation:
    """Integrated gradients, attention map and sentence deletion of one pair."""
    inputs = encode_pair(encoder, query, doc, encoder.max_length)
    attributions = attributions_from_inputs(encoder.model, inputs, config or IGConfig())
    return PairExplanation(
        query=query,
        doc=doc,
        score=attributions.score,
        attributions=attributions,
        attention=attention_from_inputs(encoder.model, inputs),
        sentences=sentence_deletion(encoder, query, doc),
        doc_truncated=inputs.doc_truncated,
        query_id=query_id,
        doc_id=doc_id,
    )


def select_pairs(
    run: Run, queries: Mapping[str, str], docs: Mapping[str, str], selection: RunSelection
) -> list[tuple[str, str]]:
    """(query id, doc id) of each query's ``top_n`` run entries (by score, ties by doc id).

    Queries are taken in sorted id order, at most ``max_queries`` of them; run queries or
    documents missing from ``queries``/``docs`` raise ConfigError naming them.
    """
    qids = sorted(run)[: selection.max_queries]
    pairs: list[tuple[str, str]] = []
    for qid in qids:
        if qid not in queries:
            raise ConfigError(f"query {qid!r} is in the run but not in the queries")
        ranked = sorted(run[qid].items(), key=lambda item: (-item[1], item[0]))
        for did, _ in ranked[: selection.top_n]:
            if did not in docs:
                raise ConfigError(f"query {qid!r}: document {did!r} is not in the corpus")
            pairs.append((qid, did))
    return pairs


def explain_run(
    encoder: CrossEncoder,
    run: Run,
    queries: Mapping[str, str],
    docs: Mapping[str, str],
    selection: RunSelection | None = None,
    *,
    progress: bool = False,
) -> list[PairExplanation]:
    """Explain the top documents of each query of a run (bounded by ``selection``)."""
    selection = selection or RunSelection()
    pairs = select_pairs(run, queries, docs, selection)
    return [
        explain_pair(encoder, queries[qid], docs[did], selection.ig, query_id=qid, doc_id=did)
        for qid, did in tqdm(pairs, disable=not progress, desc="explaining", unit="pair")
    ]
