"""Contrastive InfoNCE with a temperature and in-batch negatives.

Example:
    >>> import torch
    >>> scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # row i's positive is column i
    >>> round(infonce(scores, temperature=1.0).item(), 4)  # -log(e / (e + 1))
    0.3133
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor

from crossrank.errors import ConfigError
from crossrank.training.losses._checks import (
    check_logits,
    check_positive,
    masked_log_softmax,
    resolve_mask,
)

__all__ = ["infonce", "infonce_embeddings"]


def infonce(
    scores: Tensor,
    mask: Tensor | None = None,
    *,
    temperature: float = 0.05,
    in_batch: bool = True,
) -> Tensor:
    """InfoNCE: softmax cross-entropy of each row's positive among its candidates.

    * ``in_batch=True``: ``scores`` is ``(B, M)`` with ``M >= B`` and row i's positive in
      column i, so every other row's positive is a negative (columns past B are extra
      negatives, e.g. hard negatives of the whole batch).
    * ``in_batch=False``: ``scores`` is ``(B, 1 + N)`` with the positive in column 0.

    ``mask`` (bool, same shape) removes candidates, e.g. a duplicate of the positive.

    >>> import torch
    >>> round(infonce(torch.tensor([[0.0, 0.0, 0.0]]), in_batch=False).item(), 4)  # log 3
    1.0986
    """
    check_logits("infonce", scores, (2,))
    check_positive("infonce", "temperature", temperature)
    rows, cols = scores.shape
    if in_batch and cols < rows:
        raise ConfigError(
            f"infonce: in-batch scores need at least as many columns as rows, got {(rows, cols)}"
        )
    if not in_batch and cols < 2:
        raise ConfigError(f"infonce: scores need a positive and >= 1 negative, got {(rows, cols)}")
    mask = resolve_mask("infonce", mask, scores)
    target = torch.arange(rows, device=scores.device) if in_batch else scores.new_zeros(rows).long()
    if not bool(mask.gather(1, target[:, None]).all()):
        raise ConfigError("infonce: the mask must keep every row's positive")
    logp = masked_log_softmax(scores / temperature, mask)
    return -logp.gather(1, target[:, None]).mean()


def infonce_embeddings(
    queries: Tensor,
    positives: Tensor,
    negatives: Tensor | None = None,
    *,
    temperature: float = 0.05,
    normalize: bool = True,
) -> Tensor:
    """InfoNCE from embeddings with in-batch negatives (bi-encoder training).

    ``queries`` and ``positives`` are ``(B, D)``; optional hard ``negatives`` are
    ``(B, N, D)`` and, as in-batch negatives, serve every query in the batch. With
    ``normalize`` the scores are cosine similarities.

    >>> import torch
    >>> q = torch.eye(2)
    >>> round(infonce_embeddings(q, q, temperature=1.0).item(), 4)
    0.3133
    """
    if queries.dim() != 2 or positives.shape != queries.shape:
        raise ConfigError(
            "infonce_embeddings: queries and positives must both be (B, D), got "
            f"{tuple(queries.shape)} and {tuple(positives.shape)}"
        )
    candidates = positives
    if negatives is not None:
        if negatives.dim() != 3 or negatives.shape[::2] != queries.shape:
            raise ConfigError(
                f"infonce_embeddings: negatives must be (B, N, D) = ({queries.shape[0]}, N, "
                f"{queries.shape[1]}), got {tuple(negatives.shape)}"
            )
        candidates = torch.cat([positives, negatives.reshape(-1, queries.shape[1])])
    if normalize:
        queries, candidates = F.normalize(queries, dim=-1), F.normalize(candidates, dim=-1)
    return infonce(queries @ candidates.T, temperature=temperature, in_batch=True)
