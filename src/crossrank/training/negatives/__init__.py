"""Negatives for training: random, BM25 hard, dense hard and model-mined, with a guard.

Typical flow: take first-stage runs (BM25, dense) as candidates, optionally mine the
current model's top non-relevant documents (:func:`mine_corpus` / :func:`mine_candidates`),
filter every candidate run through the false-negative guard
(:func:`guard_false_negatives`), then :func:`sample_negatives` with a :class:`NegativeMix`.
"""

from crossrank.training.negatives.guard import (
    GuardResult,
    drop_false_negatives,
    guard_false_negatives,
)
from crossrank.training.negatives.mining import TopK, mine_candidates, mine_corpus, score_run
from crossrank.training.negatives.sampling import (
    SOURCES,
    NegativeMix,
    NegativeSample,
    sample_negatives,
)

__all__ = [
    "SOURCES",
    "GuardResult",
    "NegativeMix",
    "NegativeSample",
    "TopK",
    "drop_false_negatives",
    "guard_false_negatives",
    "mine_candidates",
    "mine_corpus",
    "sample_negatives",
    "score_run",
]
