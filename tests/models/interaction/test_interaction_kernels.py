"""Kernel pooling against hand-computed values, masking, kernel defaults and validation."""

from __future__ import annotations

import math

import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.models.interaction.kernels import (
    default_kernel_mus,
    kernel_pooling,
    kernel_sigmas,
    log_soft_tf,
    validate_kernels,
)

# Query term 1 matches doc term 1 at 0.5 and doc term 2 at 0.3; query term 2 matches doc
# term 1 exactly (1.0) and doc term 2 at 0.7.
SIM = torch.tensor([[[0.5, 0.3], [1.0, 0.7]]], dtype=torch.float64)
MUS = torch.tensor([1.0, 0.5], dtype=torch.float64)
SIGMAS = torch.tensor([1e-3, 0.1], dtype=torch.float64)
ALL = torch.tensor([[True, True]])


def test_kernel_pooling_matches_hand_computation() -> None:
    phi = kernel_pooling(SIM, ALL, ALL, MUS, SIGMAS)
    # Exact-match kernel: query term 1 has no exact match -> log(1e-10); term 2 has one -> log 1.
    exact = math.log(1e-10) + 0.0
    # Soft kernel (mu 0.5, sigma 0.1, so 2 sigma^2 = 0.02):
    #   term 1: exp(0) + exp(-0.2^2 / 0.02) = 1 + e^-2
    #   term 2: exp(-0.5^2 / 0.02) + exp(-0.2^2 / 0.02) = e^-12.5 + e^-2
    soft = math.log(1 + math.exp(-2)) + math.log(math.exp(-12.5) + math.exp(-2))
    assert phi.shape == (1, 2)
    assert phi[0, 0].item() == pytest.approx(exact, abs=1e-9)
    assert phi[0, 1].item() == pytest.approx(soft, abs=1e-9)
    assert phi[0, 1].item() == pytest.approx(-1.8730445, abs=1e-6)


def test_masked_query_and_doc_terms_are_excluded() -> None:
    q_mask, d_mask = torch.tensor([[True, False]]), torch.tensor([[True, False]])
    phi = kernel_pooling(SIM, q_mask, d_mask, MUS, SIGMAS)
    # Only s = 0.5 remains: no exact match, a perfect soft match (exp 0 = 1).
    assert phi[0].tolist() == pytest.approx([math.log(1e-10), 0.0])


def test_padding_values_do_not_leak() -> None:
    padded = torch.cat([SIM, torch.full((1, 2, 3), 0.5, dtype=torch.float64)], dim=2)
    padded = torch.cat([padded, torch.full((1, 1, 5), 1.0, dtype=torch.float64)], dim=1)
    q_mask = torch.tensor([[True, True, False]])
    d_mask = torch.tensor([[True, True, False, False, False]])
    expected = kernel_pooling(SIM, ALL, ALL, MUS, SIGMAS)
    assert torch.allclose(kernel_pooling(padded, q_mask, d_mask, MUS, SIGMAS), expected)


def test_log_soft_tf_shape_and_leading_dims() -> None:
    sim = torch.rand(2, 3, 4, 5, 6)
    per_term = log_soft_tf(
        sim, torch.ones(2, 3, 4, 6, dtype=torch.bool), MUS.float(), SIGMAS.float()
    )
    assert per_term.shape == (2, 3, 4, 5, 2)


def test_default_kernels_follow_the_paper() -> None:
    mus = default_kernel_mus()
    assert mus == pytest.approx((1.0, 0.9, 0.7, 0.5, 0.3, 0.1, -0.1, -0.3, -0.5, -0.7, -0.9))
    assert kernel_sigmas(mus) == (1e-3,) + (0.1,) * 10
    assert default_kernel_mus(3) == (1.0, 0.5, -0.5)


@pytest.mark.parametrize(
    ("mus", "sigma", "exact"),
    [((0.5, 0.1), 0.1, 1e-3), ((1.0, 1.5), 0.1, 1e-3), ((1.0, 0.5, 0.5), 0.1, 1e-3),
     ((1.0,), 0.0, 1e-3), ((1.0,), 0.1, -1.0), ((), 0.1, 1e-3)],
)  # fmt: skip
def test_invalid_kernels_are_rejected(mus: tuple[float, ...], sigma: float, exact: float) -> None:
    with pytest.raises(ConfigError):
        validate_kernels(mus, sigma, exact)


def test_default_kernel_mus_rejects_too_few() -> None:
    with pytest.raises(ConfigError, match="n_kernels"):
        default_kernel_mus(1)
