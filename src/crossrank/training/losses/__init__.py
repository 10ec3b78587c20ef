"""Training objectives: small pure functions on logits, plus a registry recipes can name.

Shapes: pointwise losses take ``(n,)`` or ``(n, k)`` logits; group losses take
``(n_groups, group_size)`` logits with labels (or teacher scores) of the same shape and an
optional bool ``mask`` of real members. Every loss returns a 0-dim tensor (mean reduction).
"""

from crossrank.training.losses.contrastive import infonce, infonce_embeddings
from crossrank.training.losses.distillation import kl_distillation, margin_mse
from crossrank.training.losses.listwise import lambdaloss, listnet, softmax_ce
from crossrank.training.losses.pairwise import hinge, ranknet
from crossrank.training.losses.pointwise import bce, graded_ce, mse
from crossrank.training.losses.registry import (
    LOSSES,
    CombinedLoss,
    LossBatch,
    LossConfig,
    build_loss,
    make_loss,
)

__all__ = [
    "LOSSES",
    "CombinedLoss",
    "LossBatch",
    "LossConfig",
    "bce",
    "build_loss",
    "graded_ce",
    "hinge",
    "infonce",
    "infonce_embeddings",
    "kl_distillation",
    "lambdaloss",
    "listnet",
    "make_loss",
    "margin_mse",
    "mse",
    "ranknet",
    "softmax_ce",
]
