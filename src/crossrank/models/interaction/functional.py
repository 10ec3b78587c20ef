"""Masked tensor helpers shared by the interaction models (pure functions, no parameters).

Masks are boolean tensors, ``True`` for real tokens; padded positions never reach a score.

Example:
    >>> import torch
    >>> q = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    >>> cosine_matrix(q, q).tolist()
    [[[1.0, 0.0], [0.0, 1.0]]]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor

__all__ = ["cosine_matrix", "masked_max", "masked_mean", "masked_softmax", "zero_padding"]


def cosine_matrix(queries: Tensor, docs: Tensor) -> Tensor:
    """Cosine similarity of every query vector with every doc vector: (*, Lq, D), (*, Ld, D) -> (*, Lq, Ld).

    Zero vectors (e.g. zeroed padding) get similarity 0 instead of NaN.
    """
    return F.normalize(queries, dim=-1) @ F.normalize(docs, dim=-1).transpose(-1, -2)


def zero_padding(vectors: Tensor, mask: Tensor) -> Tensor:
    """Zero the vectors at padded positions: (*, L, D) with mask (*, L)."""
    return vectors * mask.unsqueeze(-1).to(vectors.dtype)


def masked_softmax(logits: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` restricted to ``mask``; a row with no valid entry becomes all zeros.

    >>> masked_softmax(torch.tensor([[0.0, 0.0, 5.0]]), torch.tensor([[True, True, False]]))
    tensor([[0.5000, 0.5000, 0.0000]])
    """
    # A finite fill (not -inf) keeps all-masked rows finite; multiplying by the mask then zeroes
    # them, while rows with a valid entry are unchanged because exp(min - max) underflows to 0.
    filled = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    return F.softmax(filled, dim=dim) * mask.to(logits.dtype)


def masked_mean(values: Tensor, mask: Tensor, dim: int) -> Tensor:
    """Mean of ``values`` over ``dim`` counting only masked-in entries (0 when there are none).

    ``mask`` broadcasts against ``values``.

    >>> masked_mean(torch.tensor([[1.0, 3.0, 9.0]]), torch.tensor([[True, True, False]]), dim=1)
    tensor([2.])
    """
    weights = mask.to(values.dtype).expand_as(values)
    total = (values * weights).sum(dim)
    return total / weights.sum(dim).clamp_min(1.0)


def masked_max(values: Tensor, mask: Tensor, dim: int) -> Tensor:
    """Max of ``values`` over ``dim`` among masked-in entries (0 when there are none).

    >>> masked_max(torch.tensor([[1.0, 3.0, 9.0]]), torch.tensor([[True, True, False]]), dim=1)
    tensor([3.])
    """
    mask = mask.expand_as(values)
    filled = values.masked_fill(~mask, torch.finfo(values.dtype).min)
    best = filled.amax(dim)
    return torch.where(mask.any(dim), best, torch.zeros_like(best))
