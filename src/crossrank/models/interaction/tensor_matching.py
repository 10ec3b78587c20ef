"""Neural tensor matching: a tensor layer between query and document representations.

Term embeddings are optionally projected (``hidden_dim``), then either mean-pooled over real
tokens and scored by one tensor layer (``pooling="mean"``), or scored token pair by token pair
and pooled: ``token_max`` takes each query term's best doc term and averages over query terms,
``token_mean`` averages over all real pairs.

Example:
    >>> import torch
    >>> from crossrank.models.interaction.embeddings import TermEmbeddings
    >>> config = NeuralTensorConfig(factorization="cp", slices=4, rank=3, hidden_dim=8)
    >>> model = NeuralTensorModel(config, TermEmbeddings.from_tensor(torch.randn(20, 4)))
    >>> ids, mask = torch.tensor([[3, 4]]), torch.tensor([[True, True]])
    >>> model(ids, mask, ids, mask).shape
    torch.Size([1])
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import Tensor, nn

from crossrank.errors import ConfigError, require_positive
from crossrank.models.interaction.base import InteractionModel, check_schema, pair_masks
from crossrank.models.interaction.embeddings import TermEmbeddings
from crossrank.models.interaction.functional import masked_max, masked_mean, zero_padding
from crossrank.models.interaction.tensor import (
    BilinearTensor,
    CPTensor,
    LowRankBilinearTensor,
    TensorLayer,
    TuckerTensor,
)

__all__ = [
    "FACTORIZATIONS",
    "POOLINGS",
    "NeuralTensorConfig",
    "NeuralTensorModel",
    "TensorCost",
    "build_tensor_layer",
    "tensor_costs",
]

TENSOR_SCHEMA_VERSION = 1
FACTORIZATIONS = ("full", "low_rank", "cp", "tucker")
POOLINGS = ("mean", "token_max", "token_mean")


@dataclass(frozen=True, slots=True)
class NeuralTensorConfig:
    """Tensor matching settings. ``rank`` is used by low_rank/cp/tucker, ``slice_rank`` by tucker.

    >>> NeuralTensorConfig(factorization="low_rank", rank=8).slices
    8
    """

    factorization: str = "full"
    slices: int = 8
    rank: int = 16
    slice_rank: int = 4
    hidden_dim: int | None = 128
    pooling: str = "mean"
    schema_version: int = TENSOR_SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.factorization not in FACTORIZATIONS:
            raise ConfigError(
                f"factorization must be one of {FACTORIZATIONS}, got {self.factorization!r}"
            )
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in ("slices", "rank", "slice_rank"):
            require_positive(name, getattr(self, name))
        if self.hidden_dim is not None:
            require_positive("hidden_dim", self.hidden_dim)
        check_schema("NeuralTensorConfig", self.schema_version, TENSOR_SCHEMA_VERSION)


def build_tensor_layer(config: NeuralTensorConfig, dim: int) -> TensorLayer:
    """The tensor layer ``config.factorization`` names, over ``dim``-dimensional vectors.

    >>> type(build_tensor_layer(NeuralTensorConfig(factorization="tucker"), dim=16)).__name__
    'TuckerTensor'
    """
    k, rank = config.slices, config.rank
    if config.factorization == "low_rank":
        return LowRankBilinearTensor(dim, k, rank)
    if config.factorization == "cp":
        return CPTensor(dim, k, rank)
    if config.factorization == "tucker":
        return TuckerTensor(dim, k, rank, config.slice_rank)
    return BilinearTensor(dim, k)


@dataclass(frozen=True, slots=True)
class TensorCost:
    """Size and per-pair cost of one tensor layer (FLOPs: multiply-add = 2)."""

    factorization: str
    parameters: int
    flops_per_pair: int


def tensor_costs(
    config: NeuralTensorConfig, dim: int, lq: int = 1, ld: int = 1
) -> list[TensorCost]:
    """The tensor layer's parameters and FLOPs under every factorisation, other settings equal.

    ``lq``/``ld`` are the numbers of query/doc vectors scored pairwise (1/1 for pooled use).

    >>> [c.parameters for c in tensor_costs(NeuralTensorConfig(slices=2, rank=1), dim=4)]
    [53, 37, 31, 41]
    """
    costs = []
    for factorization in FACTORIZATIONS:
        layer = build_tensor_layer(replace(config, factorization=factorization), dim)
        costs.append(
            TensorCost(factorization, layer.num_parameters(), layer.flops_per_pair(lq, ld))
        )
    return costs


class NeuralTensorModel(InteractionModel):
    """Embeddings -> optional tanh projection -> tensor layer (pooled or token-level)."""

    arch = "tensor"
    config_class = NeuralTensorConfig

    def __init__(self, config: NeuralTensorConfig, embeddings: TermEmbeddings) -> None:
        super().__init__(config, embeddings)
        dim = config.hidden_dim or embeddings.dim
        self.projection: nn.Module = (
            nn.Sequential(nn.Linear(embeddings.dim, dim), nn.Tanh())
            if config.hidden_dim is not None
            else nn.Identity()
        )
        self.tensor = build_tensor_layer(config, dim)

    def encode(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Token representations (B, L, dim), zero at padding."""
        return zero_padding(self.projection(self.embeddings(ids)), mask)

    def interaction_matrix(
        self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor
    ) -> Tensor:
        """The tensor layer's score of every query-token x doc-token pair (B, Lq, Ld).

        With ``pooling="mean"`` this is a diagnostic view: the pooled model scores mean vectors.
        """
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        grid = self.tensor.forward_tokens(self.encode(q_ids, q_mask), self.encode(d_ids, d_mask))
        return grid * (q_mask.unsqueeze(-1) & d_mask.unsqueeze(-2)).to(grid.dtype)

    def forward(self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor) -> Tensor:
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        q, d = self.encode(q_ids, q_mask), self.encode(d_ids, d_mask)
        if self.config.pooling == "mean":
            pooled_q = masked_mean(q, q_mask.unsqueeze(-1), dim=1)
            return self.tensor(pooled_q, masked_mean(d, d_mask.unsqueeze(-1), dim=1))
        grid = self.tensor.forward_tokens(q, d)
        if self.config.pooling == "token_max":
            best = masked_max(grid, d_mask.unsqueeze(1), dim=2)  # (B, Lq)
            return masked_mean(best, q_mask, dim=1)
        pairs = q_mask.unsqueeze(-1) & d_mask.unsqueeze(-2)
        return masked_mean(grid.flatten(1), pairs.flatten(1), dim=1)

    def flops_per_pair(self, lq: int, ld: int) -> int:
        """FLOPs to score one pair of lq query and ld doc terms (multiply-add = 2 FLOPs).

        Counts the projection and the tensor layer; embedding lookup, pooling sums and
        elementwise activations are not counted.
        """
        require_positive("lq", lq)
        require_positive("ld", ld)
        projection = 0
        if self.config.hidden_dim is not None:
            projection = 2 * (lq + ld) * self.embeddings.dim * self.config.hidden_dim
        if self.config.pooling == "mean":
            return projection + self.tensor.flops_per_pair(1, 1)
        return projection + self.tensor.flops_per_pair(lq, ld)

    def tensor_parameters(self) -> int:
        """Parameters of the tensor layer alone (the figure that differs by factorisation)."""
        return self.tensor.num_parameters()
