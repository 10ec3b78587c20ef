"""K-NRM (Xiong et al., SIGIR 2017): cosine translation matrix -> RBF kernel pooling -> linear.

Example:
    >>> import torch
    >>> from crossrank.models.interaction.embeddings import TermEmbeddings
    >>> model = KNRM(KNRMConfig(), TermEmbeddings.from_tensor(torch.randn(20, 4)))
    >>> ids, mask = torch.tensor([[3, 4]]), torch.tensor([[True, True]])
    >>> model(ids, mask, ids, mask).shape
    torch.Size([1])
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from crossrank.errors import require_positive
from crossrank.models.interaction.base import InteractionModel, check_schema, pair_masks
from crossrank.models.interaction.embeddings import TermEmbeddings
from crossrank.models.interaction.functional import cosine_matrix
from crossrank.models.interaction.kernels import (
    default_kernel_mus,
    kernel_pooling,
    kernel_tensors,
    log_soft_tf,
    validate_kernels,
)

__all__ = ["KNRM", "KNRMConfig"]

KNRM_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class KNRMConfig:
    """K-NRM settings: RBF kernel means (one exact-match kernel at 1.0) and widths.

    ``kernel_sigma`` is the width of the soft kernels, ``exact_sigma`` that of the exact-match
    kernel. ``feature_scale`` multiplies the kernel features before the ranking layer; the reference
    implementation uses 0.01 because log soft-TF sums reach -23 per unmatched query term,
    which would otherwise give huge initial logits.

    >>> len(KNRMConfig().kernel_mus)
    11
    """

    kernel_mus: tuple[float, ...] = default_kernel_mus(11)
    kernel_sigma: float = 0.1
    exact_sigma: float = 1e-3
    feature_scale: float = 0.01
    schema_version: int = KNRM_SCHEMA_VERSION

    def __post_init__(self) -> None:
        validate_kernels(self.kernel_mus, self.kernel_sigma, self.exact_sigma)
        require_positive("feature_scale", self.feature_scale)
        check_schema("KNRMConfig", self.schema_version, KNRM_SCHEMA_VERSION)


class KNRM(InteractionModel):
    """Kernel-based neural ranking model; the only weights besides embeddings are K + 1."""

    arch = "knrm"
    config_class = KNRMConfig

    def __init__(self, config: KNRMConfig, embeddings: TermEmbeddings) -> None:
        super().__init__(config, embeddings)
        mus, sigmas = kernel_tensors(config.kernel_mus, config.kernel_sigma, config.exact_sigma)
        # Derived from the config, so not persisted; buffers follow .to(dtype/device).
        self.register_buffer("mus", mus, persistent=False)
        self.register_buffer("sigmas", sigmas, persistent=False)
        self.ranker = nn.Linear(len(mus), 1)

    def interaction_matrix(
        self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor
    ) -> Tensor:
        """Cosine translation matrix (B, Lq, Ld), zero at padded positions."""
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        sim = cosine_matrix(self.embeddings(q_ids), self.embeddings(d_ids))
        return sim * (q_mask.unsqueeze(-1) & d_mask.unsqueeze(-2)).to(sim.dtype)

    def kernel_activations(
        self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor
    ) -> Tensor:
        """Log soft-TF of every query term under every kernel (B, Lq, K); zero at query padding."""
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        sim = self.interaction_matrix(q_ids, q_mask, d_ids, d_mask)
        per_term = log_soft_tf(sim, d_mask, self.mus, self.sigmas)
        return per_term * q_mask.unsqueeze(-1).to(sim.dtype)

    def forward(self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor) -> Tensor:
        q_mask, d_mask = pair_masks(q_ids, q_mask, d_ids, d_mask)
        sim = cosine_matrix(self.embeddings(q_ids), self.embeddings(d_ids))
        features = kernel_pooling(sim, q_mask, d_mask, self.mus, self.sigmas)
        return self.ranker(features * self.config.feature_scale).squeeze(-1)
