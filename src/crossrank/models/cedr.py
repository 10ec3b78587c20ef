"""CEDR-KNRM (MacAvaney et al., SIGIR 2019): kernel pooling over a cross-encoder's layers.

One forward of the cross-encoder over ``[CLS] q [SEP] d [SEP]`` yields the hidden states of
every layer. For each chosen layer, the cosine similarity of every query token with every
document token (special tokens and padding masked out) goes through K-NRM's Gaussian kernel
pooling (:func:`~crossrank.models.interaction.kernels.kernel_pooling`); the kernel features
of all chosen layers, concatenated with the ``[CLS]`` representation (``cls = "vector"``,
CEDR's choice) or the cross-encoder's own logits (``cls = "score"``), feed one linear layer.

Which positions hold the query and which the document is decided by the tokenising side
(see :mod:`crossrank.inference.cedr`), which passes ``query_mask`` / ``doc_mask``.

Example:
    >>> backbone = CrossEncoderModel.from_pretrained("path/to/encoder")  # doctest: +SKIP
    >>> model = CEDRKNRM(backbone, CEDRConfig(layers=(0, 1, 2, 3)))  # doctest: +SKIP
    >>> logits = model(input_ids, attention_mask, token_type_ids,  # doctest: +SKIP
    ...                query_mask=q_mask, doc_mask=d_mask)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from crossrank.errors import ConfigError, require_positive
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.interaction.base import check_schema
from crossrank.models.interaction.functional import cosine_matrix
from crossrank.models.interaction.kernels import (
    default_kernel_mus,
    kernel_pooling,
    kernel_tensors,
    validate_kernels,
)
from crossrank.models.loading import HEAD_MODULE_NAMES

__all__ = ["CEDRKNRM", "CEDR_ARCH", "CLS_MODES", "CEDRConfig", "CEDRHead", "cedr_scores"]

CEDR_ARCH = "cedr_knrm"
CEDR_SCHEMA_VERSION = 1
CLS_MODES = ("none", "vector", "score")


@dataclass(frozen=True, slots=True)
class CEDRConfig:
    """CEDR-KNRM settings.

    ``layers`` indexes the encoder's hidden states (0 = embedding output, i = output of
    layer i; ``None`` = all of them). ``cls`` adds the last layer's ``[CLS]`` vector
    (``"vector"``), the cross-encoder's logits (``"score"``: with a 1-logit head the model
    then starts as the cross-encoder itself) or nothing (``"none"``). The kernels are K-NRM's
    (see :class:`~crossrank.models.interaction.knrm.KNRMConfig`). The weights of the kernel
    features start at 0 and the features are multiplied by ``feature_scale`` (0.01 as in
    K-NRM/CEDR); under Adam that factor acts as the kernel weights' learning-rate multiplier
    relative to the encoder's. ``max_length`` is the input length the model is trained for,
    which the scorer uses by default (kernel features grow with document length).

    >>> CEDRConfig(layers=(0, 3)).cls
    'vector'
    """

    kernel_mus: tuple[float, ...] = default_kernel_mus(11)
    kernel_sigma: float = 0.1
    exact_sigma: float = 1e-3
    layers: tuple[int, ...] | None = None
    cls: str = "vector"
    feature_scale: float = 0.01
    max_length: int = 512
    schema_version: int = CEDR_SCHEMA_VERSION

    def __post_init__(self) -> None:
        validate_kernels(self.kernel_mus, self.kernel_sigma, self.exact_sigma)
        require_positive("feature_scale", self.feature_scale)
        require_positive("max_length", self.max_length)
        if self.cls not in CLS_MODES:
            raise ConfigError(f"cls must be one of {CLS_MODES}, got {self.cls!r}")
        if self.layers is not None:
            layers = list(self.layers)
            if not layers or any(i < 0 for i in layers) or len(set(layers)) != len(layers):
                raise ConfigError(f"layers must be distinct indices >= 0, got {layers}")
        check_schema("CEDRConfig", self.schema_version, CEDR_SCHEMA_VERSION)


class CEDRHead(nn.Module):
    """Everything CEDR adds to the cross-encoder: kernel pooling per layer and the ranker.

    ``num_states`` is the number of hidden states the encoder returns (layers + 1),
    ``cls_width`` the width of the ``cls`` feature (hidden size, number of logits, or 0).
    """

    def __init__(self, config: CEDRConfig, *, num_states: int, cls_width: int) -> None:
        super().__init__()
        layers = tuple(range(num_states)) if config.layers is None else config.layers
        bad = [i for i in layers if i >= num_states]
        if bad:
            raise ConfigError(
                f"layers {bad} out of range: the encoder returns {num_states} hidden states "
                f"(0 = embeddings .. {num_states - 1} = last layer)"
            )
        self.config = config
        self.layers = layers
        mus, sigmas = kernel_tensors(config.kernel_mus, config.kernel_sigma, config.exact_sigma)
        # Derived from the config, so not persisted; buffers follow .to(dtype/device).
        self.register_buffer("mus", mus, persistent=False)
        self.register_buffer("sigmas", sigmas, persistent=False)
        self.num_kernel_features = len(layers) * len(mus)
        self.ranker = nn.Linear(self.num_kernel_features + cls_width, 1)
        with torch.no_grad():
            # Kernel features sum log soft-TF over query terms (about -23 per unmatched term),
            # so random initial weights would add large noise: start with the kernels off.
            self.ranker.weight[0, : self.num_kernel_features] = 0.0
            if config.cls == "score":  # start from the cross-encoder: the mean of its logits
                self.ranker.weight[0, self.num_kernel_features :] = 1.0 / cls_width
                self.ranker.bias.zero_()

    def kernel_features(
        self, hidden_states: Sequence[Tensor], query_mask: Tensor, doc_mask: Tensor
    ) -> Tensor:
        """Unscaled kernel features ``(B, len(layers) * K)``, layer-major.

        ``hidden_states`` are ``(B, L, H)`` each; ``query_mask`` / ``doc_mask`` ``(B, L)``
        mark the query and document tokens (special tokens and padding are ``False``).
        """
        query_mask, doc_mask = query_mask.bool(), doc_mask.bool()
        # Query tokens precede the document: similarities of the first q_end rows suffice.
        positions = torch.arange(1, query_mask.shape[1] + 1, device=query_mask.device)
        q_end = max(1, int((query_mask * positions).max()))
        features = []
        # Kernels of width 1e-3 need full precision: no autocast here, half inputs upcast.
        with torch.autocast(query_mask.device.type, enabled=False):
            for index in self.layers:
                states = hidden_states[index]
                states = states.to(torch.promote_types(states.dtype, torch.float32))
                sim = cosine_matrix(states[:, :q_end], states)
                features.append(
                    kernel_pooling(sim, query_mask[:, :q_end], doc_mask, self.mus, self.sigmas)
                )
        return torch.cat(features, dim=-1)

    def forward(
        self,
        hidden_states: Sequence[Tensor],
        logits: Tensor,
        query_mask: Tensor,
        doc_mask: Tensor,
    ) -> Tensor:
        """One score per pair ``(B,)`` from the encoder's hidden states and logits."""
        kernels = self.kernel_features(hidden_states, query_mask, doc_mask)
        parts = [kernels * self.config.feature_scale]
        if self.config.cls == "vector":
            parts.append(hidden_states[-1][:, 0])
        elif self.config.cls == "score":
            parts.append(logits)
        weight = self.ranker.weight
        features = torch.cat([p.to(weight.dtype) for p in parts], dim=-1)
        return self.ranker(features).squeeze(-1)


def _cls_width(backbone: CrossEncoderModel, cls: str) -> int:
    """Width of the ``cls`` feature for ``backbone``."""
    if cls == "vector":
        return int(backbone.config.hidden_size)
    return backbone.heads.num_labels if cls == "score" else 0


def _freeze_unused_head(module: nn.Module, cls: str) -> None:
    """Freeze the classifier and pooler unless ``cls = "score"`` reads them.

    They get no gradient otherwise, which distributed training rejects.
    """
    if cls == "score":
        return
    for name, sub in module.named_modules():
        if name.rsplit(".", 1)[-1] in HEAD_MODULE_NAMES:
            sub.requires_grad_(False)


class CEDRKNRM(nn.Module):
    """A cross-encoder (``encoder``) with a :class:`CEDRHead` (``head``); one logit per pair.

    ``backbone`` keeps the tokenizer and output heads of the cross-encoder, which saving
    needs; its module is trained in place.
    """

    def __init__(self, backbone: CrossEncoderModel, config: CEDRConfig) -> None:
        super().__init__()
        num_states = int(backbone.config.num_hidden_layers) + 1
        self.backbone = backbone
        self.encoder = backbone.module
        self.head = CEDRHead(
            config, num_states=num_states, cls_width=_cls_width(backbone, config.cls)
        )
        _freeze_unused_head(self.encoder, config.cls)

    @property
    def config(self) -> CEDRConfig:
        return self.head.config

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        token_type_ids: Tensor | None = None,
        *,
        query_mask: Tensor,
        doc_mask: Tensor,
    ) -> Tensor:
        return cedr_scores(
            self.encoder,
            self.head,
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            query_mask=query_mask,
            doc_mask=doc_mask,
        )

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Scalar parameters (encoder included; frozen ones too unless ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def cedr_scores(
    encoder: nn.Module,
    head: CEDRHead,
    *,
    input_ids: Tensor,
    attention_mask: Tensor,
    token_type_ids: Tensor | None,
    query_mask: Tensor,
    doc_mask: Tensor,
) -> Tensor:
    """One encoder forward with hidden states, then the head: scores ``(B,)``."""
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids
    out = encoder(**inputs, output_hidden_states=True)
    return head(out.hidden_states, out.logits, query_mask, doc_mask)
