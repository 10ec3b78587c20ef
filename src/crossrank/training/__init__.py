"""Training building blocks: objectives, negative sampling and data augmentation.

* :mod:`crossrank.training.losses`: pointwise, pairwise, listwise, contrastive and
  distillation objectives on logits, plus a registry a recipe can name (``LossConfig``).
* :mod:`crossrank.training.negatives`: random / BM25 / dense / model-mined negatives,
  a false-negative guard and a ``NegativeMix``.
* :mod:`crossrank.training.augmentation`: synthetic queries, query noise, passages.
"""

from crossrank.training.augmentation import (
    SyntheticPair,
    extract_passages,
    sentence_queries,
    split_sentences,
    term_dropout,
    term_substitution,
    title_queries,
)
from crossrank.training.losses import CombinedLoss, LossBatch, LossConfig, build_loss
from crossrank.training.negatives import (
    GuardResult,
    NegativeMix,
    NegativeSample,
    guard_false_negatives,
    mine_candidates,
    mine_corpus,
    sample_negatives,
)

__all__ = [
    "CombinedLoss",
    "GuardResult",
    "LossBatch",
    "LossConfig",
    "NegativeMix",
    "NegativeSample",
    "SyntheticPair",
    "build_loss",
    "extract_passages",
    "guard_false_negatives",
    "mine_candidates",
    "mine_corpus",
    "sample_negatives",
    "sentence_queries",
    "split_sentences",
    "term_dropout",
    "term_substitution",
    "title_queries",
]
