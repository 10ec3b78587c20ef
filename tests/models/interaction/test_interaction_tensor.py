"""Tensor layers: low-rank == full-rank, CP/Tucker shapes, parameter counts and FLOPs."""

from __future__ import annotations

import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.models.interaction import NeuralTensorConfig, tensor_costs
from crossrank.models.interaction.tensor import (
    BilinearTensor,
    CPTensor,
    LowRankBilinearTensor,
    TensorLayer,
    TuckerTensor,
)

DIM, K = 6, 4


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(3, 5, DIM, generator=generator, dtype=torch.float64)
    d = torch.randn(3, 7, DIM, generator=generator, dtype=torch.float64)
    return q, d


def test_low_rank_equals_full_rank_with_w_set_to_u_v_transpose() -> None:
    torch.manual_seed(0)
    low = LowRankBilinearTensor(DIM, K, rank=2).double()
    full = BilinearTensor(DIM, K).double()
    with torch.no_grad():
        full.weight.copy_(torch.stack([low.u[i] @ low.v[i].T for i in range(K)]))
        for name in ("query_linear", "doc_linear", "output"):
            getattr(full, name).load_state_dict(getattr(low, name).state_dict())
    q, d = _inputs()
    assert torch.allclose(low(q[:, 0], d[:, 0]), full(q[:, 0], d[:, 0]), atol=1e-5, rtol=0)
    assert torch.allclose(low.forward_tokens(q, d), full.forward_tokens(q, d), atol=1e-5, rtol=0)
    # The slice values themselves, against the textbook formula q^T U_i V_i^T d.
    explicit = torch.stack([q[:, 0] @ low.u[i] @ low.v[i].T @ d[:, 0].T for i in range(K)], -1)
    assert torch.allclose(low.bilinear(q[:, 0], d[:, 0]), explicit.diagonal().T, atol=1e-10)


def test_full_rank_bilinear_matches_explicit_formula() -> None:
    torch.manual_seed(1)
    full = BilinearTensor(DIM, K).double()
    q, d = _inputs(1)
    slices = full.bilinear_tokens(q, d)
    i, j, s = 2, 4, 3
    expected = q[1, i] @ full.weight[s] @ d[1, j]
    assert slices[1, i, j, s].item() == pytest.approx(expected.item(), abs=1e-12)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: LowRankBilinearTensor(DIM, K, rank=3),
        lambda: CPTensor(DIM, K, rank=3),
        lambda: TuckerTensor(DIM, K, rank=3, slice_rank=2),
    ],
    ids=["low_rank", "cp", "tucker"],
)
def test_factorised_layers_equal_their_materialised_full_layer(layer) -> None:
    torch.manual_seed(2)
    factorised: TensorLayer = layer().double()
    full = factorised.to_full()
    assert full.full_weight().shape == (K, DIM, DIM)
    q, d = _inputs(2)
    assert factorised.bilinear_tokens(q, d).shape == (3, 5, 7, K)
    assert factorised.forward_tokens(q, d).shape == (3, 5, 7)
    assert torch.allclose(factorised.forward_tokens(q, d), full.forward_tokens(q, d), atol=1e-10)
    assert torch.allclose(factorised(q[:, 0], d[:, 0]), full(q[:, 0], d[:, 0]), atol=1e-10)


def test_cp_and_tucker_full_weights_follow_their_definitions() -> None:
    torch.manual_seed(3)
    cp = CPTensor(DIM, K, rank=3)
    s, p, q = 1, 2, 5
    expected = sum(cp.c[s, r] * cp.a[p, r] * cp.b[q, r] for r in range(3))
    assert cp.full_weight()[s, p, q].item() == pytest.approx(expected.item(), abs=1e-6)
    tucker = TuckerTensor(DIM, K, rank=3, slice_rank=2)
    expected = sum(
        tucker.core[a, b, c] * tucker.a[p, a] * tucker.b[q, b] * tucker.c[s, c]
        for a in range(3)
        for b in range(3)
        for c in range(2)
    )
    assert tucker.full_weight()[s, p, q].item() == pytest.approx(expected.item(), abs=1e-6)


# Shared by every layer: V[q; d] + b (2 * DIM * K + K) and the output layer (K + 1).
SHARED = 2 * DIM * K + K + K + 1


@pytest.mark.parametrize(
    ("layer", "slice_params"),
    [
        (lambda: BilinearTensor(DIM, K), K * DIM * DIM),
        (lambda: LowRankBilinearTensor(DIM, K, rank=2), 2 * K * DIM * 2),
        (lambda: CPTensor(DIM, K, rank=3), 2 * DIM * 3 + K * 3),
        (lambda: TuckerTensor(DIM, K, rank=3, slice_rank=2), 2 * DIM * 3 + 3 * 3 * 2 + K * 2),
    ],
    ids=["full", "low_rank", "cp", "tucker"],
)
def test_parameter_counts(layer, slice_params: int) -> None:
    assert layer().num_parameters() == slice_params + SHARED


def test_flops_per_pair_hand_counts() -> None:
    # Pooled use (one query vector, one doc vector); multiply-add = 2 FLOPs.
    linear = 2 * DIM * K + K  # V_q q, V_d d, output layer
    assert BilinearTensor(DIM, K).flops_per_pair() == 2 * (K * DIM * DIM + K * DIM + linear)
    assert LowRankBilinearTensor(DIM, K, 2).flops_per_pair() == 2 * (
        2 * K * DIM * 2 + K * 2 + linear
    )
    assert CPTensor(DIM, K, 3).flops_per_pair() == 2 * (2 * DIM * 3 + K * 3 + K * 3 + linear)
    tucker = TuckerTensor(DIM, K, rank=3, slice_rank=2)
    assert tucker.flops_per_pair() == 2 * (2 * DIM * 3 + 3 * 3 * 2 + 3 * 2 + 2 * K + linear)
    # Token level: 5 query x 7 doc vectors; the full layer projects each query vector once.
    token_linear = (5 + 7) * DIM * K + 5 * 7 * K
    expected = 2 * (5 * K * DIM * DIM + 5 * 7 * K * DIM + token_linear)
    assert BilinearTensor(DIM, K).flops_per_pair(5, 7) == expected


def test_low_rank_is_cheaper_than_full_rank_at_realistic_sizes() -> None:
    full, low = BilinearTensor(128, 8), LowRankBilinearTensor(128, 8, rank=8)
    assert low.num_parameters() < full.num_parameters() / 4
    assert low.flops_per_pair(32, 256) < full.flops_per_pair(32, 256)


@pytest.mark.parametrize("bad", [0, -1])
def test_invalid_sizes_are_rejected(bad: int) -> None:
    with pytest.raises(ConfigError):
        LowRankBilinearTensor(DIM, K, rank=bad)
    with pytest.raises(ConfigError):
        BilinearTensor(DIM, bad)
    with pytest.raises(ConfigError):
        BilinearTensor(DIM, K).flops_per_pair(bad, 1)


def test_tensor_costs_report_every_factorisation() -> None:
    config = NeuralTensorConfig(slices=K, rank=2, slice_rank=2)
    costs = {c.factorization: c for c in tensor_costs(config, DIM, lq=5, ld=7)}
    assert list(costs) == ["full", "low_rank", "cp", "tucker"]
    assert costs["full"].parameters == BilinearTensor(DIM, K).num_parameters()
    assert costs["low_rank"].flops_per_pair == LowRankBilinearTensor(DIM, K, 2).flops_per_pair(5, 7)
    assert costs["tucker"].parameters == TuckerTensor(DIM, K, 2, 2).num_parameters()
