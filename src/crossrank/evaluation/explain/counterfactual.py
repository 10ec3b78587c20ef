"""Counterfactual sentence deletion: which sentences the score depends on.

The document is split into sentences; each variant drops one sentence, and the full document
plus every variant are scored in one batched call of any :class:`~crossrank.protocols.Scorer`.
A sentence's *drop* is ``score(full) - score(without it)``: large positive drops mark the
sentences the relevance judgement rests on.

Example:
    >>> import numpy as np
    >>> class Overlap:
    ...     def score(self, queries, docs):
    ...         return np.array([len(set(q.split()) & set(d.lower().split()))
    ...                          for q, d in zip(queries, docs)], dtype=np.float32)
    >>> result = sentence_deletion(Overlap(), "aspirin bleeding", "Cats purr. Aspirin bleeding risk.")
    >>> result.ranked[0].sentence, result.ranked[0].drop
    ('Aspirin bleeding risk.', 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from crossrank.data.text import split_sentences
from crossrank.errors import ConfigError
from crossrank.protocols import Scorer


@dataclass(frozen=True, slots=True)
class SentenceEffect:
    """One sentence: position in the document, score without it, and the drop (full - without)."""

    index: int
    sentence: str
    score_without: float
    drop: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "sentence": self.sentence,
            "score_without": self.score_without,
            "drop": self.drop,
            "rank": self.rank,
        }


@dataclass(frozen=True, slots=True)
class SentenceDeletion:
    """Per-sentence score drops; ``effects`` in document order, ``ranked`` by drop."""

    full_score: float
    effects: tuple[SentenceEffect, ...]

    @property
    def ranked(self) -> tuple[SentenceEffect, ...]:
        return tuple(sorted(self.effects, key=lambda e: e.rank))

    def to_dict(self) -> dict[str, Any]:
        return {
            "full_score": self.full_score,
            "sentences": [e.to_dict() for e in self.effects],
        }


def sentence_deletion(scorer: Scorer, query: str, doc: str) -> SentenceDeletion:
    """Score ``doc`` with each sentence removed (one batched call); rank sentences by drop.

    Ties keep document order. A document without any sentence raises ConfigError.
    """
    if not isinstance(doc, str) or not isinstance(query, str):
        raise ConfigError("query and document must be str")
    sentences = split_sentences(doc)
    if not sentences:
        raise ConfigError("the document has no sentences to delete (it is empty)")
    variants = [
        " ".join(s for j, s in enumerate(sentences) if j != i) for i in range(len(sentences))
    ]
    scores = np.asarray(scorer.score([query] * (len(variants) + 1), [doc, *variants]))
    if scores.shape != (len(variants) + 1,):
        raise ConfigError(f"the scorer returned shape {scores.shape} for {len(variants) + 1} pairs")
    scores = scores.astype(np.float64)
    drops = scores[0] - scores[1:]
    ranks = np.empty(len(drops), dtype=np.int64)
    ranks[np.argsort(-drops, kind="stable")] = np.arange(1, len(drops) + 1)
    effects = tuple(
        SentenceEffect(i, s, float(scores[i + 1]), float(drops[i]), int(ranks[i]))
        for i, s in enumerate(sentences)
    )
    return SentenceDeletion(float(scores[0]), effects)
