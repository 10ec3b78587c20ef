"""Training building blocks: objectives, negative sampling and data augmentation.

* :mod:`crossrank.training.losses`: pointwise, pairwise, listwise, contrastive and
  distillation objectives on logits, plus a registry a recipe can name (``LossConfig``).
* :mod:`crossrank.training.negatives`: random / BM25 / dense / model-mined negatives,
  a false-negative guard and a ``NegativeMix``.
* :mod:`crossrank.training.augmentation`: synthetic queries, query noise, passages.
* the trainer: recipes (:mod:`~crossrank.training.config`), :func:`train` (what ``crossrank
  train`` runs), :class:`Trainer` and the :class:`TrainableModel` protocol. These are resolved
  on first access, so importing the objectives does not load transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

# name -> module, imported on first access (see the module docstring).
_LAZY = {
    "CrossEncoderTrainable": "crossrank.training.trainable",
    "StageConfig": "crossrank.training.config",
    "TrainConfig": "crossrank.training.config",
    "TrainResult": "crossrank.training.state",
    "TrainableModel": "crossrank.training.trainable",
    "Trainer": "crossrank.training.trainer",
    "load_config": "crossrank.training.config",
    "parse_config": "crossrank.training.config",
    "train": "crossrank.training.pipeline",
}

if TYPE_CHECKING:
    from crossrank.training.config import StageConfig, TrainConfig, load_config, parse_config
    from crossrank.training.pipeline import train
    from crossrank.training.state import TrainResult
    from crossrank.training.trainable import CrossEncoderTrainable, TrainableModel
    from crossrank.training.trainer import Trainer


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crossrank.training' has no attribute {name!r}")


__all__ = [
    "CombinedLoss",
    "CrossEncoderTrainable",
    "GuardResult",
    "LossBatch",
    "LossConfig",
    "NegativeMix",
    "NegativeSample",
    "StageConfig",
    "SyntheticPair",
    "TrainConfig",
    "TrainResult",
    "TrainableModel",
    "Trainer",
    "build_loss",
    "extract_passages",
    "guard_false_negatives",
    "load_config",
    "mine_candidates",
    "mine_corpus",
    "parse_config",
    "sample_negatives",
    "sentence_queries",
    "split_sentences",
    "term_dropout",
    "term_substitution",
    "title_queries",
    "train",
]
