"""Distillation from teacher scores: MarginMSE and temperature-scaled KL.

Student logits and teacher scores have shape ``(n_groups, group_size)``; ``mask`` marks
real members. In MarginMSE column 0 is the positive and the other columns are negatives.

Example:
    >>> import torch
    >>> student, teacher = torch.tensor([[3.0, 1.0]]), torch.tensor([[5.0, 2.0]])
    >>> margin_mse(student, teacher).item()  # ((3 - 1) - (5 - 2))^2
    1.0
"""

from __future__ import annotations

from torch import Tensor

from crossrank.errors import ConfigError
from crossrank.training.losses._checks import (
    check_positive,
    check_same_shape,
    group_mask,
    masked_log_softmax,
    masked_mean,
)

__all__ = ["kl_distillation", "margin_mse"]


def margin_mse(logits: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """MarginMSE (Hofstätter et al. 2020): MSE between student and teacher margins.

    The margin of negative j is ``s_pos - s_j``; the loss is the mean over all real
    negatives of ``(student_margin - teacher_margin)^2``.

    >>> import torch
    >>> margin_mse(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[2.0, 0.0, 1.0]])).item()
    0.5
    """
    mask = group_mask("margin_mse", logits, mask)
    check_same_shape("margin_mse", "teacher", teacher, logits)
    if logits.shape[1] < 2:
        raise ConfigError(
            f"margin_mse: groups need a positive and >= 1 negative, got {tuple(logits.shape)}"
        )
    if not bool(mask[:, 0].all()):
        raise ConfigError("margin_mse: column 0 (the positive) must be unmasked in every group")
    teacher = teacher.to(logits.dtype)
    student_margin = logits[:, :1] - logits[:, 1:]
    teacher_margin = teacher[:, :1] - teacher[:, 1:]
    return masked_mean((student_margin - teacher_margin) ** 2, mask[:, 1:])


def kl_distillation(
    logits: Tensor, teacher: Tensor, mask: Tensor | None = None, *, temperature: float = 1.0
) -> Tensor:
    """KL(teacher || student) between group softmaxes at a temperature, mean over groups.

    Both distributions are ``softmax(scores / temperature)``; the result is multiplied by
    ``temperature**2`` (Hinton et al. 2015) so gradient magnitudes do not shrink with it.

    >>> import torch
    >>> kl_distillation(torch.zeros(1, 3), torch.zeros(1, 3)).item()
    0.0
    """
    mask = group_mask("kl", logits, mask)
    check_same_shape("kl", "teacher", teacher, logits)
    check_positive("kl", "temperature", temperature)
    teacher_logp = masked_log_softmax(teacher.to(logits.dtype) / temperature, mask)
    student_logp = masked_log_softmax(logits / temperature, mask)
    # exp(0) = 1 on padded entries, so the mask zeroes their (already zero) log terms too.
    teacher_p = teacher_logp.exp() * mask
    kl = (teacher_p * (teacher_logp - student_logp)).sum(dim=1)
    return kl.mean() * temperature**2
