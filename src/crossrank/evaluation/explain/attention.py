"""Attention maps of one pair: how much each query token attends to each document token.

Transformers only returns attention weights from its eager attention kernel, so the forward
pass runs with eager attention (switched for the call and restored afterwards).

Example:
    >>> amap = attention_map(encoder, "what is bm25", "BM25 ranks documents.")  # doctest: +SKIP
    >>> amap.weights.shape  # layers, heads, query tokens, document tokens  # doctest: +SKIP
    (6, 12, 4, 5)
    >>> amap.mean().shape  # averaged over layers and heads  # doctest: +SKIP
    (4, 5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from crossrank.errors import ConfigError, ModelLoadError
from crossrank.evaluation.explain.inputs import (
    PairInputs,
    as_model,
    default_max_length,
    encode_pair,
    inference_state,
    module_device,
)
from crossrank.inference.cross_encoder import CrossEncoder
from crossrank.models.cross_encoder import CrossEncoderModel


@dataclass(frozen=True, slots=True)
class AttentionMap:
    """Query -> document attention: ``weights[layer, head, query_token, doc_token]``."""

    query_tokens: tuple[str, ...]
    doc_tokens: tuple[str, ...]
    weights: np.ndarray

    @property
    def num_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.weights.shape[1])

    def mean(self, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """``[query, doc]`` block of one layer/head, averaging over whichever is ``None``."""
        block = self.weights
        block = (
            block[[self._check("layer", layer, self.num_layers)]] if layer is not None else block
        )
        block = block[:, [self._check("head", head, self.num_heads)]] if head is not None else block
        return block.mean(axis=(0, 1))

    def to_dict(self) -> dict[str, Any]:
        return {
            "query_tokens": list(self.query_tokens),
            "doc_tokens": list(self.doc_tokens),
            "shape": list(self.weights.shape),
            "weights": self.weights.tolist(),
        }

    @staticmethod
    def _check(what: str, index: int, count: int) -> int:
        if not 0 <= index < count:
            raise ConfigError(f"{what} must be in [0, {count}), got {index}")
        return index


def attention_map(
    model: CrossEncoder | CrossEncoderModel, query: str, doc: str, max_length: int | None = None
) -> AttentionMap:
    """Every layer's and head's query -> document attention block for one pair."""
    inputs = encode_pair(model, query, doc, max_length or default_max_length(model))
    return attention_from_inputs(as_model(model), inputs)


def attention_from_inputs(model: CrossEncoderModel, inputs: PairInputs) -> AttentionMap:
    """:func:`attention_map` for an already encoded pair."""
    device = module_device(model)
    with inference_state(model, eager_attention=True), torch.inference_mode():
        output = model.module(**inputs.tensors(device), output_attentions=True)
    layers = output.attentions
    if not layers:
        raise ModelLoadError(
            f"{type(model.module).__name__} returned no attention weights; "
            "explanations need a model that supports output_attentions"
        )
    stacked = torch.stack([layer[0] for layer in layers]).float().cpu().numpy()
    rows, cols = slice(*inputs.query_span), slice(*inputs.doc_span)
    return AttentionMap(inputs.query_tokens, inputs.doc_tokens, stacked[:, :, rows, cols])
