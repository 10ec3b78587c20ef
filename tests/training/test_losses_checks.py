"""Gradient sanity (gradcheck in double precision) and input validation of the losses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.training.losses import (
    bce,
    graded_ce,
    hinge,
    infonce,
    kl_distillation,
    lambdaloss,
    listnet,
    margin_mse,
    ranknet,
    softmax_ce,
)

torch.manual_seed(0)
# Well-separated logits: gradcheck's 1e-6 perturbations cannot swap LambdaLoss ranks.
LOGITS = torch.tensor([[1.3, -0.4, 0.7, 2.1], [0.2, 1.9, -1.1, 0.5]], dtype=torch.float64)
REL = torch.tensor([[2, 0, 1, 0], [0, 1, 0, 3]])
MASK = torch.tensor([[True, True, True, True], [True, True, True, False]])
TEACHER = torch.tensor([[3.0, -1.0, 0.5, 1.0], [0.3, 2.5, -0.7, 4.0]], dtype=torch.float64)

GROUP_LOSSES: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = [
    ("ranknet", lambda x: ranknet(x, REL, MASK, sigma=1.5)),
    ("hinge", lambda x: hinge(x, REL, MASK, margin=5.0)),
    ("softmax_ce", lambda x: softmax_ce(x, REL, MASK, label_smoothing=0.1)),
    ("listnet", lambda x: listnet(x, REL, MASK)),
    ("lambdaloss", lambda x: lambdaloss(x, REL, MASK)),
    ("lambdarank", lambda x: lambdaloss(x, REL, MASK, weighting="lambdarank")),
    ("kl", lambda x: kl_distillation(x, TEACHER, MASK, temperature=2.0)),
    ("margin_mse", lambda x: margin_mse(x, TEACHER, MASK)),
    ("infonce", lambda x: infonce(x, MASK, temperature=0.5, in_batch=False)),
]


@pytest.mark.parametrize(("name", "fn"), GROUP_LOSSES, ids=[n for n, _ in GROUP_LOSSES])
def test_gradcheck_group_losses(name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    x = LOGITS.clone().requires_grad_()
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize(("name", "fn"), GROUP_LOSSES, ids=[n for n, _ in GROUP_LOSSES])
def test_padded_members_get_zero_finite_gradient(
    name: str, fn: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    x = LOGITS.clone().requires_grad_()
    fn(x).backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad[1, 3].item() == 0.0


def test_gradcheck_pointwise() -> None:
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([1.0, 0.0, 0.3, 1.0, 0.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: bce(z, labels, label_smoothing=0.1), (x,))
    y = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    grades = torch.tensor([0, 2, 1, 2])
    assert torch.autograd.gradcheck(lambda z: graded_ce(z, grades, label_smoothing=0.2), (y,))


def test_kl_gradient_reaches_teacher_when_it_requires_grad() -> None:
    teacher = TEACHER.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda z: kl_distillation(LOGITS, z, MASK), (teacher,))


def test_ranknet_gradient_pushes_relevant_up() -> None:
    x = torch.zeros(1, 2, requires_grad=True)
    ranknet(x, torch.tensor([[1, 0]])).backward()
    assert x.grad is not None
    assert x.grad[0, 0] < 0 < x.grad[0, 1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ranknet(torch.zeros(3), torch.zeros(3)), r"ranknet: logits must have 2"),
        (
            lambda: ranknet(torch.zeros(2, 3), torch.zeros(2, 2)),
            r"relevance must have the logits' shape \(2, 3\)",
        ),
        (
            lambda: softmax_ce(torch.zeros(2, 2), torch.tensor([[1, 0], [0, 0]])),
            r"groups without: \[1\]",
        ),
        (
            lambda: listnet(
                torch.zeros(2, 2), torch.zeros(2, 2), torch.tensor([[True, True], [False, False]])
            ),
            r"fully masked groups: \[1\]",
        ),
        (
            lambda: listnet(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2)),
            r"mask must be a bool tensor",
        ),
        (lambda: bce(torch.zeros(2), torch.tensor([0.0, 2.0])), r"labels must lie in \[0, 1\]"),
        (
            lambda: bce(torch.zeros(2), torch.zeros(2), label_smoothing=1.0),
            r"label_smoothing must be in \[0, 1\), got 1.0",
        ),
        (lambda: graded_ce(torch.zeros(2, 3), torch.tensor([0, 3])), r"grades must lie in 0..2"),
        (
            lambda: graded_ce(torch.zeros(2, 3), torch.tensor([0.0, 1.0])),
            r"integer tensor of shape \(2,\)",
        ),
        (
            lambda: ranknet(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2)),
            r"floating-point",
        ),
        (
            lambda: lambdaloss(torch.zeros(1, 2), torch.zeros(1, 2), weighting="ndcg"),
            r"weighting must be one of",
        ),
        (
            lambda: kl_distillation(torch.zeros(1, 2), torch.zeros(1, 2), temperature=0.0),
            r"temperature must be a finite number > 0, got 0.0",
        ),
        (lambda: margin_mse(torch.zeros(1, 1), torch.zeros(1, 1)), r"positive and >= 1 negative"),
        (
            lambda: margin_mse(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([[False, True]])),
            r"column 0",
        ),
        (lambda: infonce(torch.zeros(3, 2)), r"at least as many columns as rows"),
        (
            lambda: infonce(torch.zeros(2, 2), torch.tensor([[False, True], [True, True]])),
            r"keep every row's positive",
        ),
        (
            lambda: hinge(torch.zeros(1, 2), torch.zeros(1, 2), margin=-1.0),
            r"margin must be a finite number >= 0",
        ),
    ],
)
def test_bad_inputs_raise_config_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()
