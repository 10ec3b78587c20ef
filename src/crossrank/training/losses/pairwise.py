"""Pairwise objectives over groups: every pair (i, j) in a group with ``rel_i > rel_j``.

Logits and relevance have shape ``(n_groups, group_size)``; ``mask`` (bool, same shape)
marks real members so groups of different sizes can be padded into one batch. The loss
is the mean over all informative pairs of the batch, and 0 (with zero gradient) when the
batch has none, e.g. when every group's labels are equal.

Example:
    >>> import torch
    >>> round(ranknet(torch.tensor([[1.0, 0.0]]), torch.tensor([[1, 0]])).item(), 4)
    0.3133
"""

from __future__ import annotations

import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor

from crossrank.training.losses._checks import (
    check_non_negative,
    check_positive,
    check_same_shape,
    group_mask,
    masked_mean,
)

__all__ = ["hinge", "pair_differences", "ranknet"]


def pair_differences(
    loss: str, logits: Tensor, relevance: Tensor, mask: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Return ``(s_i - s_j, informative, mask)`` after validating the inputs.

    The first two are ``(n_groups, size, size)``: ``informative[g, i, j]`` holds when both
    members are real and i is more relevant than j. ``mask`` is the resolved group mask.
    """
    mask = group_mask(loss, logits, mask)
    check_same_shape(loss, "relevance", relevance, logits)
    informative = (
        (relevance[:, :, None] > relevance[:, None, :]) & mask[:, :, None] & mask[:, None, :]
    )
    return logits[:, :, None] - logits[:, None, :], informative, mask


def ranknet(
    logits: Tensor, relevance: Tensor, mask: Tensor | None = None, *, sigma: float = 1.0
) -> Tensor:
    """RankNet (Burges et al. 2005): mean of ``-log sigmoid(sigma * (s_i - s_j))`` over pairs.

    >>> import torch
    >>> round(ranknet(torch.tensor([[0.0, 0.0]]), torch.tensor([[1, 0]])).item(), 4)  # log 2
    0.6931
    """
    check_positive("ranknet", "sigma", sigma)
    diffs, informative, _ = pair_differences("ranknet", logits, relevance, mask)
    # softplus(-x) == -log sigmoid(x), computed without overflow for large |x|.
    return masked_mean(F.softplus(-sigma * diffs), informative)


def hinge(
    logits: Tensor, relevance: Tensor, mask: Tensor | None = None, *, margin: float = 1.0
) -> Tensor:
    """Margin hinge: mean of ``max(0, margin - (s_i - s_j))`` over pairs.

    >>> import torch
    >>> hinge(torch.tensor([[0.5, 0.0]]), torch.tensor([[1, 0]])).item()
    0.5
    """
    check_non_negative("hinge", "margin", margin)
    diffs, informative, _ = pair_differences("hinge", logits, relevance, mask)
    return masked_mean(F.relu(margin - diffs), informative)
