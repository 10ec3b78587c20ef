"""What every interaction model shares: the forward signature, config plumbing, inspection.

A model is an ``nn.Module`` built from a frozen config dataclass and a ``TermEmbeddings``
layer (Hugging Face ``modeling_bert`` style). ``forward(q_ids, q_mask, d_ids, d_mask)`` maps
padded (B, Lq) / (B, Ld) id tensors and boolean masks to one logit per pair, shape (B,).

Example:
    >>> from crossrank.models.interaction.knrm import KNRMConfig
    >>> config_from_dict(KNRMConfig, {"kernel_mus": [1.0, 0.5]}).kernel_mus
    (1.0, 0.5)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from torch import Tensor, nn

from crossrank.errors import ConfigError, ModelLoadError
from crossrank.models.interaction.embeddings import TermEmbeddings

__all__ = ["InteractionModel", "check_schema", "config_from_dict", "pair_masks"]

ConfigT = TypeVar("ConfigT")


def check_schema(name: str, found: int, expected: int) -> None:
    """Raise ConfigError for a config persisted under another schema version."""
    if found != expected:
        raise ConfigError(f"unsupported {name} schema_version {found!r} (expected {expected})")


def config_from_dict(cls: type[ConfigT], data: Mapping[str, Any]) -> ConfigT:
    """Rebuild a config dataclass from JSON; JSON lists become the tuples the configs hold."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ModelLoadError(f"{cls.__name__} has no fields {unknown}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**values)
    except (ConfigError, TypeError) as err:
        raise ModelLoadError(f"invalid {cls.__name__}: {err}") from err


def pair_masks(
    q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor
) -> tuple[Tensor, Tensor]:
    """Check the (B, Lq) / (B, Ld) input shapes; return the masks as bool.

    Integer 0/1 masks (Hugging Face ``attention_mask`` style) are accepted and converted.

    >>> import torch
    >>> ids = torch.tensor([[5, 0]])
    >>> pair_masks(ids, torch.tensor([[1, 0]]), ids, torch.tensor([[1, 1]]))[0]
    tensor([[ True, False]])
    """
    batch = q_ids.shape[0] if q_ids.ndim == 2 else -1
    if (
        q_ids.ndim != 2
        or q_mask.shape != q_ids.shape
        or d_ids.ndim != 2
        or d_mask.shape != d_ids.shape
        or d_ids.shape[0] != batch
    ):
        raise ConfigError(
            "expected q_ids/q_mask of shape (B, Lq) and d_ids/d_mask of shape (B, Ld), got "
            f"{tuple(q_ids.shape)}, {tuple(q_mask.shape)}, {tuple(d_ids.shape)}, {tuple(d_mask.shape)}"
        )
    return q_mask.bool(), d_mask.bool()


class InteractionModel(nn.Module):
    """Base class: stores config and embeddings; subclasses implement the scoring."""

    arch: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any, embeddings: TermEmbeddings) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config
        self.embeddings = embeddings

    def forward(self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor) -> Tensor:
        raise NotImplementedError

    def interaction_matrix(
        self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor
    ) -> Tensor:
        """The model's query-term x doc-term interaction (B, Lq, Ld); zero at padding."""
        raise NotImplementedError

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (embeddings included unless ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
