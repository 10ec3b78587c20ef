"""Pointwise objectives: each (query, document) pair is scored on its own.

Logits have shape ``(n,)`` (one score per pair) or ``(n, k)``; every loss returns the mean
over the unmasked elements as a 0-dim tensor.

Example:
    >>> import torch
    >>> round(bce(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])).item(), 4)
    0.6931
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor

from crossrank.errors import ConfigError
from crossrank.training.losses._checks import (
    check_logits,
    check_same_shape,
    check_unit_interval,
    masked_mean,
    resolve_mask,
)

__all__ = ["bce", "graded_ce", "mse"]


def bce(
    logits: Tensor, labels: Tensor, mask: Tensor | None = None, *, label_smoothing: float = 0.0
) -> Tensor:
    """Binary cross-entropy on logits with soft or hard labels in [0, 1].

    Label smoothing moves each target towards 0.5: ``y * (1 - eps) + 0.5 * eps``.

    >>> import torch
    >>> round(bce(torch.tensor([2.0]), torch.tensor([1.0])).item(), 4)  # -log sigmoid(2)
    0.1269
    """
    check_logits("bce", logits, (1, 2))
    check_same_shape("bce", "labels", labels, logits)
    check_unit_interval("bce", "label_smoothing", label_smoothing)
    mask = resolve_mask("bce", mask, logits)
    target = labels.to(logits.dtype)
    if bool(((target < 0) | (target > 1))[mask].any()):
        raise ConfigError(f"bce: labels must lie in [0, 1], got values in {_range(target[mask])}")
    target = target * (1.0 - label_smoothing) + 0.5 * label_smoothing
    losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return masked_mean(losses, mask)


def graded_ce(
    logits: Tensor, grades: Tensor, mask: Tensor | None = None, *, label_smoothing: float = 0.0
) -> Tensor:
    """Multi-class cross-entropy over relevance grades 0..k-1 (logits ``(n, k)``, grades ``(n,)``).

    Label smoothing is torch's: the target puts ``1 - eps + eps/k`` on the true grade and
    ``eps/k`` on every other grade.

    >>> import torch
    >>> round(graded_ce(torch.zeros(1, 3), torch.tensor([2])).item(), 4)  # log 3
    1.0986
    """
    check_logits("graded_ce", logits, (2,))
    check_unit_interval("graded_ce", "label_smoothing", label_smoothing)
    n, k = logits.shape
    if not isinstance(grades, Tensor) or grades.shape != (n,) or grades.is_floating_point():
        shape = tuple(grades.shape) if isinstance(grades, Tensor) else type(grades).__name__
        raise ConfigError(
            f"graded_ce: grades must be an integer tensor of shape ({n},), got {shape}"
        )
    mask = torch.ones(n, dtype=torch.bool, device=logits.device) if mask is None else mask
    if mask.shape != (n,) or mask.dtype != torch.bool:
        raise ConfigError(f"graded_ce: mask must be a bool tensor of shape ({n},)")
    if bool(((grades < 0) | (grades >= k))[mask].any()):
        raise ConfigError(f"graded_ce: grades must lie in 0..{k - 1}, got {_range(grades[mask])}")
    safe = torch.where(mask, grades, torch.zeros_like(grades)).long()
    losses = F.cross_entropy(logits, safe, reduction="none", label_smoothing=label_smoothing)
    return masked_mean(losses, mask)


def mse(predictions: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error between predicted and target scores (regression on grades).

    >>> import torch
    >>> mse(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])).item()  # (1 + 4) / 2
    2.5
    """
    check_logits("mse", predictions, (1, 2))
    check_same_shape("mse", "targets", targets, predictions)
    mask = resolve_mask("mse", mask, predictions)
    return masked_mean((predictions - targets.to(predictions.dtype)) ** 2, mask)


def _range(values: Tensor) -> str:
    if values.numel() == 0:
        return "[]"
    return f"[{values.min().item()}, {values.max().item()}]"
