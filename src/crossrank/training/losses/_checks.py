"""Input checks shared by the loss functions.

Losses validate shapes and hyperparameters at the boundary and raise ConfigError naming
the bad value, so a malformed batch fails with a readable message instead of a broadcast
error deep inside torch. Value checks (label ranges, fully padded groups) cost one device
sync each, which is negligible next to a cross-encoder forward pass.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from crossrank.errors import ConfigError


def check_unit_interval(loss: str, name: str, value: float, *, closed: bool = False) -> None:
    """Raise unless 0 <= value < 1 (or <= 1 when ``closed``)."""
    upper_ok = value <= 1.0 if closed else value < 1.0
    if isinstance(value, bool) or not (math.isfinite(value) and value >= 0.0 and upper_ok):
        bound = "[0, 1]" if closed else "[0, 1)"
        raise ConfigError(f"{loss}: {name} must be in {bound}, got {value!r}")


def check_positive(loss: str, name: str, value: float) -> None:
    """Raise unless value is a finite number > 0."""
    if isinstance(value, bool) or not (math.isfinite(value) and value > 0.0):
        raise ConfigError(f"{loss}: {name} must be a finite number > 0, got {value!r}")


def check_non_negative(loss: str, name: str, value: float) -> None:
    """Raise unless value is a finite number >= 0."""
    if isinstance(value, bool) or not (math.isfinite(value) and value >= 0.0):
        raise ConfigError(f"{loss}: {name} must be a finite number >= 0, got {value!r}")


def check_logits(loss: str, logits: Tensor, dims: tuple[int, ...]) -> None:
    """Raise unless ``logits`` is a floating tensor with one of the allowed ranks."""
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise ConfigError(f"{loss}: logits must be a floating-point tensor, got {logits!r}")
    if logits.dim() not in dims:
        raise ConfigError(
            f"{loss}: logits must have {' or '.join(f'{d}' for d in dims)} dimension(s), "
            f"got shape {tuple(logits.shape)}"
        )


def check_same_shape(loss: str, name: str, tensor: Tensor, logits: Tensor) -> None:
    """Raise unless ``tensor`` has the shape of ``logits``."""
    if not isinstance(tensor, Tensor) or tensor.shape != logits.shape:
        shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise ConfigError(
            f"{loss}: {name} must have the logits' shape {tuple(logits.shape)}, got {shape}"
        )


def resolve_mask(loss: str, mask: Tensor | None, logits: Tensor) -> Tensor:
    """Return a boolean mask (all True when None) after checking its shape and dtype."""
    if mask is None:
        return torch.ones_like(logits, dtype=torch.bool)
    check_same_shape(loss, "mask", mask, logits)
    if mask.dtype != torch.bool:
        raise ConfigError(
            f"{loss}: mask must be a bool tensor (True = real member), got {mask.dtype}"
        )
    return mask


def group_mask(loss: str, logits: Tensor, mask: Tensor | None) -> Tensor:
    """Check (n_groups, group_size) logits and return a mask with >= 1 real member per group."""
    check_logits(loss, logits, (2,))
    mask = resolve_mask(loss, mask, logits)
    empty = torch.nonzero(~mask.any(dim=1)).flatten()
    if empty.numel():
        raise ConfigError(
            f"{loss}: every group needs at least one unmasked member; "
            f"fully masked groups: {empty[:5].tolist()}"
        )
    return mask


def masked_log_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """Log-softmax over the real members of each group; padded entries come back as 0.

    Padded logits are set to -inf before the softmax, so they take no probability mass,
    then zeroed with ``where`` so that ``0 * log p`` stays finite and gradients are not NaN.
    """
    logp = torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.where(mask, logp, torch.zeros_like(logp))


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` holds; 0 (still differentiable) when nothing does."""
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return total / mask.sum().clamp(min=1)
