"""One (query, document) pair as model inputs, plus the torch helpers every explainer shares.

:func:`encode_pair` builds the exact row the scoring engine scores in truncation mode
(``[CLS] query [SEP] document [SEP]``, the document cut to fit ``max_length``, never the
query), so an explanation explains the score that ``CrossEncoder.predict`` returns.

Example:
    >>> inputs = encode_pair(model, "what is bm25", "BM25 ranks documents.", 64)  # doctest: +SKIP
    >>> inputs.doc_tokens  # doctest: +SKIP
    ('bm', '##25', 'ranks', 'documents', '.')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from crossrank.errors import ConfigError, require_positive
from crossrank.inference.cross_encoder import DEFAULT_MAX_LENGTH, CrossEncoder
from crossrank.inference.tokenize import PairTokenizer, validate_texts
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadLayout


@dataclass(frozen=True, slots=True)
class PairInputs:
    """Token ids of one pair; ``query_span``/``doc_span`` are ``(start, end)`` positions."""

    input_ids: np.ndarray
    token_type_ids: np.ndarray | None
    tokens: tuple[str, ...]
    query_span: tuple[int, int]
    doc_span: tuple[int, int]
    doc_truncated: bool

    @property
    def query_tokens(self) -> tuple[str, ...]:
        return self.tokens[slice(*self.query_span)]

    @property
    def doc_tokens(self) -> tuple[str, ...]:
        return self.tokens[slice(*self.doc_span)]

    def tensors(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Batch-of-one ``input_ids``/``attention_mask``/``token_type_ids`` on ``device``."""
        ids = torch.from_numpy(self.input_ids)[None, :].to(device)
        out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if self.token_type_ids is not None:
            out["token_type_ids"] = torch.from_numpy(self.token_type_ids)[None, :].to(device)
        return out


def as_model(model: CrossEncoder | CrossEncoderModel) -> CrossEncoderModel:
    """The torch-side model of a :class:`CrossEncoder` (or the model itself)."""
    if isinstance(model, CrossEncoder):
        return model.model
    if isinstance(model, CrossEncoderModel):
        return model
    raise ConfigError(f"expected a CrossEncoder or CrossEncoderModel, got {type(model).__name__}")


def default_max_length(model: CrossEncoder | CrossEncoderModel) -> int:
    """The encoder's own ``max_length``, else min(512, the model's positions)."""
    if isinstance(model, CrossEncoder):
        return model.max_length
    return min(DEFAULT_MAX_LENGTH, as_model(model).max_positions)


def encode_pair(
    model: CrossEncoder | CrossEncoderModel, query: str, doc: str, max_length: int
) -> PairInputs:
    """The engine's truncation-mode input row for ``(query, doc)``; ConfigError if none fits."""
    require_positive("max_length", max_length)
    cross = as_model(model)
    if max_length > cross.max_positions:
        raise ConfigError(
            f"max_length={max_length} exceeds the model's {cross.max_positions} positions"
        )
    (query,) = validate_texts([query], "query")
    (doc,) = validate_texts([doc], "document")
    tokenizer = PairTokenizer(cross.tokenizer)
    room = max_length - tokenizer.template.num_special
    q = tokenizer.encode([query], max_tokens=max_length)
    q_len = int(q.tokens.lengths[0])
    if q_len == 0:
        raise ConfigError("the query is empty (no tokens); an empty query cannot be explained")
    if q.clipped[0] or q_len >= room:
        raise ConfigError(
            f"the query has {q_len}+ tokens: with max_length={max_length} no document token "
            "fits beside it (queries are never truncated); raise max_length or shorten it"
        )
    d = tokenizer.encode([doc], max_tokens=room - q_len)
    d_len = int(d.tokens.lengths[0])
    batch = tokenizer.assemble(
        q.tokens,
        d.tokens,
        query_index=np.zeros(1, dtype=np.int64),
        doc_index=np.zeros(1, dtype=np.int64),
        doc_start=np.zeros(1, dtype=np.int64),
        doc_end=np.array([d_len], dtype=np.int64),
    )
    q_start = len(tokenizer.template.prefix)
    d_start = q_start + q_len + len(tokenizer.template.middle)
    ids = batch.input_ids[0]
    return PairInputs(
        input_ids=ids,
        token_type_ids=None if batch.token_type_ids is None else batch.token_type_ids[0],
        tokens=tuple(cross.tokenizer.convert_ids_to_tokens(ids.tolist())),
        query_span=(q_start, q_start + q_len),
        doc_span=(d_start, d_start + d_len),
        doc_truncated=bool(d.clipped[0]),
    )


def module_device(model: CrossEncoderModel) -> torch.device:
    """Where the module's weights live; ConfigError unless they are float32.

    Gradients and attention maps of a bf16/fp16 copy are too coarse to check, so explanations
    need the exact fp32 weights (load with ``backend="torch"``).
    """
    parameter = next(model.module.parameters())
    if parameter.dtype != torch.float32:
        raise ConfigError(
            f"explanations need float32 weights, the model is {parameter.dtype}; "
            "load it with backend='torch'"
        )
    return parameter.device


def primary_scores(heads: HeadLayout, logits: torch.Tensor) -> torch.Tensor:
    """Differentiable twin of :meth:`HeadLayout.primary_scores` (one score per row)."""
    head = heads.head(heads.primary)
    columns = logits[:, heads.slices()[heads.primary]].float()
    if head.kind == "graded":
        grades = torch.arange(head.size, dtype=columns.dtype, device=columns.device)
        return torch.softmax(columns, dim=1) @ grades
    return columns[:, 0]


@contextlib.contextmanager
def inference_state(model: CrossEncoderModel, *, eager_attention: bool = False) -> Iterator[None]:
    """Eval mode (and eager attention, which alone returns attention weights) for the block.

    The module's previous training flag and attention implementation are restored on exit,
    so callers see no lasting change; do not score with the same model concurrently.
    """
    module = model.module
    was_training = module.training
    previous = module.config._attn_implementation
    module.eval()
    try:
        if eager_attention and previous != "eager":
            module.set_attn_implementation("eager")
        yield
    finally:
        if module.config._attn_implementation != previous:
            module.set_attn_implementation(previous)
        module.train(was_training)
