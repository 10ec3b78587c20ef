"""Neural tensor layers (Socher et al., 2013): k bilinear slices between two vectors.

``s_i = q^T W_i d + V[q; d] + b`` for i = 1..k, then ``score = w^T tanh(s) + c``. The four
layers differ only in how the slices W_i (a k x dim x dim tensor) are parameterised:

- ``BilinearTensor``: each W_i is a full dim x dim matrix.
- ``LowRankBilinearTensor``: W_i = U_i V_i^T (dim x rank factors per slice).
- ``CPTensor``: W = sum_r a_r o b_r o c_r (one shared CP decomposition of rank R).
- ``TuckerTensor``: W = G x_1 A x_2 B x_3 C (core rank x rank x slice_rank).

No factorised layer materialises W in its forward pass; ``full_weight()`` does, for checks.

Counting convention for ``flops_per_pair(lq, ld)``: the layer scores all ``lq * ld`` pairs of
lq query vectors and ld doc vectors (pooled use: lq = ld = 1); every multiply-add of a
contraction counts as 2 FLOPs; bias additions and tanh are not counted.

Example:
    >>> import torch
    >>> layer = LowRankBilinearTensor(dim=6, k=4, rank=2)
    >>> layer(torch.randn(3, 6), torch.randn(3, 6)).shape
    torch.Size([3])
    >>> layer.num_parameters(), layer.flops_per_pair()
    (153, 312)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from crossrank.errors import require_positive

__all__ = ["BilinearTensor", "CPTensor", "LowRankBilinearTensor", "TensorLayer", "TuckerTensor"]


class TensorLayer(nn.Module):
    """Shared part of all tensor layers: the linear term V[q; d] + b and the output layer."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        require_positive("dim", dim)
        require_positive("k", k)
        self.dim, self.k = dim, k
        # V[q; d] + b split into a query and a doc half so token grids can broadcast it.
        self.query_linear = nn.Linear(dim, k)
        self.doc_linear = nn.Linear(dim, k, bias=False)
        self.output = nn.Linear(k, 1)

    def bilinear_tokens(self, q: Tensor, d: Tensor) -> Tensor:
        """``q_i^T W_s d_j`` for every pair: (B, Lq, dim), (B, Ld, dim) -> (B, Lq, Ld, k)."""
        raise NotImplementedError

    def full_weight(self) -> Tensor:
        """The slice tensor W as a dense (k, dim, dim) tensor (materialised; for checks)."""
        raise NotImplementedError

    def _bilinear_macs(self, lq: int, ld: int) -> int:
        raise NotImplementedError

    def bilinear(self, q: Tensor, d: Tensor) -> Tensor:
        """``q^T W_s d`` for aligned vectors: (B, dim), (B, dim) -> (B, k)."""
        return self.bilinear_tokens(q.unsqueeze(1), d.unsqueeze(1))[:, 0, 0]

    def forward(self, q: Tensor, d: Tensor) -> Tensor:
        """Score aligned vector pairs: (B, dim), (B, dim) -> (B,)."""
        return self.forward_tokens(q.unsqueeze(1), d.unsqueeze(1))[:, 0, 0]

    def forward_tokens(self, q: Tensor, d: Tensor) -> Tensor:
        """Score every query-token x doc-token pair: (B, Lq, dim), (B, Ld, dim) -> (B, Lq, Ld)."""
        slices = (
            self.bilinear_tokens(q, d)
            + self.query_linear(q).unsqueeze(2)
            + self.doc_linear(d).unsqueeze(1)
        )
        return self.output(torch.tanh(slices)).squeeze(-1)

    def to_full(self) -> BilinearTensor:
        """An equivalent full-rank layer: W materialised, the linear and output layers copied."""
        full = BilinearTensor(self.dim, self.k).to(self.output.weight.dtype)
        with torch.no_grad():
            full.weight.copy_(self.full_weight())
            for name in ("query_linear", "doc_linear", "output"):
                getattr(full, name).load_state_dict(getattr(self, name).state_dict())
        return full

    def num_parameters(self) -> int:
        """Scalar parameters of the layer (slices, linear term, output layer)."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_pair(self, lq: int = 1, ld: int = 1) -> int:
        """FLOPs to score lq query x ld doc vectors (see the module docstring's convention)."""
        require_positive("lq", lq)
        require_positive("ld", ld)
        linear_macs = (lq + ld) * self.dim * self.k + lq * ld * self.k
        return 2 * (self._bilinear_macs(lq, ld) + linear_macs)


def _factor(*shape: int, fan_in: float) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) / math.sqrt(fan_in))


class BilinearTensor(TensorLayer):
    """Full-rank slices: k dim x dim matrices (k * dim^2 parameters)."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__(dim, k)
        # Scaled so q^T W d has roughly unit variance for unit-variance inputs.
        self.weight = nn.Parameter(torch.randn(k, dim, dim) / dim)

    def bilinear_tokens(self, q: Tensor, d: Tensor) -> Tensor:
        projected = torch.einsum("bid,kde->bike", q, self.weight)
        return torch.einsum("bike,bje->bijk", projected, d)

    def full_weight(self) -> Tensor:
        return self.weight

    def _bilinear_macs(self, lq: int, ld: int) -> int:
        return lq * self.k * self.dim**2 + lq * ld * self.k * self.dim


class LowRankBilinearTensor(TensorLayer):
    """Slices W_i = U_i V_i^T computed as (q U_i) . (d V_i); 2 * k * dim * rank parameters."""

    def __init__(self, dim: int, k: int, rank: int) -> None:
        super().__init__(dim, k)
        require_positive("rank", rank)
        self.rank = rank
        self.u = _factor(k, dim, rank, fan_in=dim * math.sqrt(rank))
        self.v = _factor(k, dim, rank, fan_in=dim * math.sqrt(rank))

    def bilinear_tokens(self, q: Tensor, d: Tensor) -> Tensor:
        qu = torch.einsum("bid,kdr->bikr", q, self.u)
        dv = torch.einsum("bjd,kdr->bjkr", d, self.v)
        return torch.einsum("bikr,bjkr->bijk", qu, dv)

    def full_weight(self) -> Tensor:
        return self.u @ self.v.transpose(1, 2)

    def _bilinear_macs(self, lq: int, ld: int) -> int:
        return (lq + ld) * self.k * self.dim * self.rank + lq * ld * self.k * self.rank


class CPTensor(TensorLayer):
    """CP factorisation W[s, p, q] = sum_r C[s, r] A[p, r] B[q, r]; (2 * dim + k) * rank parameters."""

    def __init__(self, dim: int, k: int, rank: int) -> None:
        super().__init__(dim, k)
        require_positive("rank", rank)
        self.rank = rank
        self.a = _factor(dim, rank, fan_in=dim)
        self.b = _factor(dim, rank, fan_in=dim)
        self.c = _factor(k, rank, fan_in=rank)

    def bilinear_tokens(self, q: Tensor, d: Tensor) -> Tensor:
        qac = torch.einsum("bir,kr->bikr", q @ self.a, self.c)
        return torch.einsum("bikr,bjr->bijk", qac, d @ self.b)

    def full_weight(self) -> Tensor:
        return torch.einsum("sr,pr,qr->spq", self.c, self.a, self.b)

    def _bilinear_macs(self, lq: int, ld: int) -> int:
        r = self.rank
        return (lq + ld) * self.dim * r + lq * self.k * r + lq * ld * self.k * r


class TuckerTensor(TensorLayer):
    """Tucker factorisation W = G x_1 A x_2 B x_3 C with core (rank, rank, slice_rank)."""

    def __init__(self, dim: int, k: int, rank: int, slice_rank: int) -> None:
        super().__init__(dim, k)
        require_positive("rank", rank)
        require_positive("slice_rank", slice_rank)
        self.rank, self.slice_rank = rank, slice_rank
        self.a = _factor(dim, rank, fan_in=dim)
        self.b = _factor(dim, rank, fan_in=dim)
        self.c = _factor(k, slice_rank, fan_in=slice_rank)
        self.core = _factor(rank, rank, slice_rank, fan_in=rank)

    def bilinear_tokens(self, q: Tensor, d: Tensor) -> Tensor:
        # n indexes the batch here: a, b, c are the core's three modes.
        q_core = torch.einsum("nia,abc->nibc", q @ self.a, self.core)
        pair_core = torch.einsum("nibc,njb->nijc", q_core, d @ self.b)
        return pair_core @ self.c.T

    def full_weight(self) -> Tensor:
        return torch.einsum("abc,pa,qb,sc->spq", self.core, self.a, self.b, self.c)

    def _bilinear_macs(self, lq: int, ld: int) -> int:
        r, s = self.rank, self.slice_rank
        return (lq + ld) * self.dim * r + lq * r * r * s + lq * ld * (r * s + s * self.k)
