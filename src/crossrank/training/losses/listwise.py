"""Listwise objectives over groups of documents for one query.

Logits and labels have shape ``(n_groups, group_size)``; ``mask`` (bool, same shape) marks
real members, so variable-size groups are padded into one batch. Padded members take no
probability mass and their labels are ignored. Every loss returns the mean over groups.

Example:
    >>> import torch
    >>> round(softmax_ce(torch.zeros(1, 4), torch.tensor([[1, 0, 0, 0]])).item(), 4)  # log 4
    1.3863
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor

from crossrank.errors import ConfigError
from crossrank.training.losses._checks import (
    check_non_negative,
    check_positive,
    check_same_shape,
    check_unit_interval,
    group_mask,
    masked_log_softmax,
)
from crossrank.training.losses.pairwise import pair_differences

__all__ = ["LAMBDA_WEIGHTINGS", "lambdaloss", "listnet", "softmax_ce"]

LambdaWeighting = Literal["ndcg2pp", "lambdarank"]
LAMBDA_WEIGHTINGS: tuple[str, ...] = ("ndcg2pp", "lambdarank")


def softmax_ce(
    logits: Tensor, labels: Tensor, mask: Tensor | None = None, *, label_smoothing: float = 0.0
) -> Tensor:
    """Group softmax cross-entropy against the labels normalised to a distribution.

    With one positive per group this is the usual "1 positive + n negatives" objective.
    Label smoothing mixes the target with the uniform distribution over the real members:
    ``(1 - eps) * target + eps / n_real``. Every group needs a label > 0.

    >>> import torch
    >>> round(softmax_ce(torch.tensor([[2.0, 0.0]]), torch.tensor([[1, 0]])).item(), 4)
    0.1269
    """
    mask = group_mask("softmax_ce", logits, mask)
    check_same_shape("softmax_ce", "labels", labels, logits)
    check_unit_interval("softmax_ce", "label_smoothing", label_smoothing)
    target = torch.where(mask, labels.to(logits.dtype), torch.zeros_like(logits))
    if bool((target < 0).any()):
        raise ConfigError("softmax_ce: labels must be >= 0")
    mass = target.sum(dim=1, keepdim=True)
    no_positive = torch.nonzero(mass.squeeze(1) <= 0).flatten()
    if no_positive.numel():
        raise ConfigError(
            f"softmax_ce: every group needs a label > 0; groups without: {no_positive[:5].tolist()}"
        )
    target = target / mass
    if label_smoothing:
        uniform = mask.to(logits.dtype) / mask.sum(dim=1, keepdim=True)
        target = (1.0 - label_smoothing) * target + label_smoothing * uniform
    return -(target * masked_log_softmax(logits, mask)).sum(dim=1).mean()


def listnet(logits: Tensor, relevance: Tensor, mask: Tensor | None = None) -> Tensor:
    """ListNet top-one loss (Cao et al. 2007): CE between softmax(relevance) and softmax(logits).

    >>> import torch
    >>> round(listnet(torch.zeros(1, 2), torch.tensor([[1.0, 1.0]])).item(), 4)  # log 2
    0.6931
    """
    mask = group_mask("listnet", logits, mask)
    check_same_shape("listnet", "relevance", relevance, logits)
    rel = relevance.to(logits.dtype).masked_fill(~mask, float("-inf"))
    target = torch.softmax(rel, dim=1)  # padded members get exactly 0
    return -(target * masked_log_softmax(logits, mask)).sum(dim=1).mean()


def lambdaloss(
    logits: Tensor,
    relevance: Tensor,
    mask: Tensor | None = None,
    *,
    weighting: LambdaWeighting = "ndcg2pp",
    sigma: float = 1.0,
    mu: float = 10.0,
) -> Tensor:
    """LambdaLoss (Wang et al. 2018, "The LambdaLoss Framework") with nDCG weights.

    For each pair with ``rel_i > rel_j`` the loss is ``-w_ij * log2 sigmoid(sigma (s_i - s_j))``,
    summed within a group and averaged over groups that have such a pair. Gains are
    ``G_i = (2^rel_i - 1) / maxDCG`` and ``D(r) = log2(1 + r)`` for the 1-based rank r of
    document i under the current scores (ranks are not differentiated, as in the paper).

    * ``"lambdarank"``: the classic LambdaRank weight ``|ΔnDCG_ij|``, the nDCG change from
      swapping i and j: ``w = |G_i - G_j| * |1/D(r_i) - 1/D(r_j)|``.
    * ``"ndcg2pp"`` (default): the paper's NDCG-Loss2++, ``w = mu * delta_ij * |G_i - G_j| +
      |ΔnDCG_ij|`` with ``delta_ij = |1/D(|r_i - r_j|) - 1/D(|r_i - r_j| + 1)|``.

    >>> import torch
    >>> logits, rel = torch.tensor([[0.0, 1.0]]), torch.tensor([[1, 0]])
    >>> round(lambdaloss(logits, rel, weighting="lambdarank").item(), 4)
    0.6993
    """
    if weighting not in LAMBDA_WEIGHTINGS:
        raise ConfigError(
            f"lambdaloss: weighting must be one of {LAMBDA_WEIGHTINGS}, got {weighting!r}"
        )
    check_positive("lambdaloss", "sigma", sigma)
    check_non_negative("lambdaloss", "mu", mu)
    diffs, informative, mask = pair_differences("lambdaloss", logits, relevance, mask)
    weights = _lambda_weights(logits.detach(), relevance, mask, weighting, mu)
    pair_losses = F.softplus(-sigma * diffs) / math.log(2.0) * weights
    per_group = torch.where(informative, pair_losses, torch.zeros_like(pair_losses)).sum(dim=(1, 2))
    has_pairs = informative.any(dim=2).any(dim=1)
    return per_group.sum() / has_pairs.sum().clamp(min=1)


def _lambda_weights(
    scores: Tensor, relevance: Tensor, mask: Tensor, weighting: LambdaWeighting, mu: float
) -> Tensor:
    """Pair weights ``(n_groups, size, size)``, constants with respect to the logits."""
    size = scores.shape[1]
    positions = torch.arange(size, device=scores.device)
    # Padded members sort last, so the real members hold ranks 1..n_real.
    order = scores.masked_fill(~mask, float("-inf")).argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order).scatter_(1, order, positions.expand_as(order)) + 1
    inv_discount = 1.0 / torch.log2(1.0 + ranks.to(scores.dtype))
    gains = torch.where(mask, 2.0 ** relevance.to(scores.dtype) - 1.0, torch.zeros_like(scores))
    ideal = gains.sort(dim=1, descending=True).values
    max_dcg = (ideal / torch.log2(2.0 + positions.to(scores.dtype))).sum(dim=1, keepdim=True)
    norm_gains = gains / max_dcg.clamp(min=torch.finfo(scores.dtype).tiny)
    gain_gap = (norm_gains[:, :, None] - norm_gains[:, None, :]).abs()
    delta_ndcg = gain_gap * (inv_discount[:, :, None] - inv_discount[:, None, :]).abs()
    if weighting == "lambdarank":
        return delta_ndcg
    # |r_i - r_j| >= 1 on every informative pair; clamp keeps the unused diagonal finite.
    rank_gap = (ranks[:, :, None] - ranks[:, None, :]).abs().clamp(min=1).to(scores.dtype)
    delta = (1.0 / torch.log2(1.0 + rank_gap) - 1.0 / torch.log2(2.0 + rank_gap)).abs()
    return mu * delta * gain_gap + delta_ndcg
