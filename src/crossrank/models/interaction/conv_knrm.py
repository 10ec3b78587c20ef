"""Conv-KNRM (Dai et al., WSDM 2018): n-gram convolutions, cross-matched, kernel-pooled.

Query and document embeddings go through one Conv1d per n-gram size (1..max_ngram, ReLU);
every query n-gram size is matched with every document n-gram size by cosine, each of the
``max_ngram ** 2`` translation matrices is kernel-pooled, and a linear layer ranks the
concatenated features.

Example:
    >>> import torch
    >>> from crossrank.models.interaction.embeddings import TermEmbeddings
    >>> model = ConvKNRM(ConvKNRMConfig(n_filters=8), TermEmbeddings.from_tensor(torch.randn(20, 4)))
    >>> ids, mask = torch.tensor([[3, 4, 5]]), torch.tensor([[True, True, True]])
    >>> model(ids, mask, ids, mask).shape
    torch.Size([1])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import Tensor, nn

from crossrank.errors import require_positive
from crossrank.models.interaction.base import InteractionModel, check_schema, pair_masks
from crossrank.models.interaction.embeddings import TermEmbeddings
from crossrank.models.interaction.functional import cosine_matrix, zero_padding
from crossrank.models.interaction.kernels import (
    default_kernel_mus,
    kernel_pooling,
    kernel_tensors,
    validate_kernels,
)

__all__ = ["ConvKNRM", "ConvKNRMConfig"]

CONV_KNRM_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class ConvKNRMConfig:
    """Conv-KNRM settings: filters per n-gram size, largest n, kernels as in ``KNRMConfig``.

    >>> ConvKNRMConfig().max_ngram
    3
    """

    n_filters: int = 128
    max_ngram: int = 3
    kernel_mus: tuple[float, ...] = default_kernel_mus(11)
    kernel_sigma: float = 0.1
    exact_sigma: float = 1e-3
    feature_scale: float = 0.01
    schema_version: int = CONV_KNRM_SCHEMA_VERSION

    def __post_init__(self) -> None:
        require_positive("n_filters", self.n_filters)
        require_positive("max_ngram", self.max_ngram)
        validate_kernels(self.kernel_mus, self.kernel_sigma, self.exact_sigma)
        require_positive("feature_scale", self.feature_scale)
        check_schema("ConvKNRMConfig", self.schema_version, CONV_KNRM_SCHEMA_VERSION)


class ConvKNRM(InteractionModel):
    """Convolutional K-NRM; n-gram position i covers terms i..i+n-1 (zeros past the end)."""

    arch = "conv_knrm"
    config_class = ConvKNRMConfig

    def __init__(self, config: ConvKNRMConfig, embeddings: TermEmbeddings) -> None:
        super().__init__(config, embeddings)
        self.convs = nn.ModuleList(
            nn.Conv1d(embeddings.dim, config.n_filters, kernel_size=n)
            for n in range(1, config.max_ngram + 1)
        )
        mus, sigmas = kernel_tensors(config.kernel_mus, config.kernel_sigma, config.exact_sigma)
        self.register_buffer("mus", mus, persistent=False)
        self.register_buffer("sigmas", sigmas, persistent=False)
        self.ranker = nn.Linear(config.max_ngram**2 * len(mus), 1)

    def ngrams(self, ids: Tensor, mask: Tensor) -> Tensor:
        """N-gram representations (B, max_ngram, L, n_filters) for every start position.

        Padding is zeroed before the convolution and the input is right-padded with zeros,
        so a real position never sees padding values and extra padding changes nothing.
        """
        x = zero_padding(self.embeddings(ids), mask).transpose(1, 2)  # (B, D, L)
        grams = [F.relu(conv(F.pad(x, (0, n - 1)))) for n, conv in enumerate(self.convs, 1)]
        return torch.stack(grams, dim=1).transpose(2, 3)

    def _cross_match(self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor) -> Tensor:
        """Cosine of every (query n-gram size, doc n-gram size): (B, N, N, Lq, Ld)."""
        q = self.ngrams(q_ids, q_mask).unsqueeze(2)  # (B, N, 1, Lq, F)
        d = self.ngrams(d_ids, d_mask).unsqueeze(1)  # (B, 1, N, Ld, F)
        return cosine_matrix(q, d)

    def interaction_matrix(
        self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor
    ) -> Tensor:
        """The unigram x unigram translation matrix (B, Lq, Ld), zero at padding."""
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        sim = self._cross_match(q_ids, q_mask, d_ids, d_mask)[:, 0, 0]
        return sim * (q_mask.unsqueeze(-1) & d_mask.unsqueeze(-2)).to(sim.dtype)

    def kernel_activations(
        self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor
    ) -> Tensor:
        """Kernel features of each (query n, doc n) pair, (B, N * N, K), row = (nq - 1) * N + nd - 1."""
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        sim = self._cross_match(q_ids, q_mask, d_ids, d_mask)
        features = kernel_pooling(
            sim, q_mask[:, None, None, :], d_mask[:, None, None, :], self.mus, self.sigmas
        )
        return features.flatten(1, 2)

    def kernel_row_labels(self) -> list[str]:
        """Row names of ``kernel_activations``, e.g. 'q2-gram x d1-gram'."""
        sizes = range(1, self.config.max_ngram + 1)
        return [f"q{a}-gram x d{b}-gram" for a in sizes for b in sizes]

    def forward(self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor) -> Tensor:
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        features = self.kernel_activations(q_ids, q_mask, d_ids, d_mask).flatten(1)
        return self.ranker(features * self.config.feature_scale).squeeze(-1)
