"""CEDR-KNRM inference: query/document token masks and a :class:`~crossrank.protocols.Scorer`.

Rows are built by the cross-encoder's tokenizer template (``[CLS] q [SEP] d [SEP]``); the
query tokens are those of the query segment's token type, the document tokens those of the
document's, each less the template's special tokens of that type, so ``[CLS]``, ``[SEP]``
and padding never reach a similarity matrix. :class:`CEDRScorer` runs the model behind the
shared :class:`~crossrank.inference.engine.ScoringEngine` (bulk tokenisation, length
bucketing, input order restored).

Example:
    >>> scorer = CEDRScorer.from_pretrained("runs/cedr")  # doctest: +SKIP
    >>> scorer.score(["what is bm25"], ["BM25 is a ranking function."])  # doctest: +SKIP
    array([1.93], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from crossrank.errors import ConfigError, require_positive
from crossrank.inference.backends import Backend, check_device, default_token_budget
from crossrank.inference.engine import EngineSettings, InferenceStats, ScoringEngine
from crossrank.inference.tokenize import PairTemplate, PairTokenizer, TokenBatch
from crossrank.models.cedr import CEDRKNRM
from crossrank.models.cedr_io import load_cedr
from crossrank.models.heads import HeadLayout, HeadSpec

__all__ = ["CEDRBackend", "CEDRScorer", "check_segments", "segment_masks"]

_HEAD = HeadLayout.single(HeadSpec.binary("cedr"))


def check_segments(tokenizer: PairTokenizer) -> None:
    """Raise ConfigError unless token type ids tell the query from the document."""
    types = tokenizer.template.types
    if not tokenizer.uses_token_types or types[1] == types[3]:
        raise ConfigError(
            "CEDR needs a tokenizer whose token_type_ids separate query and document "
            f"(BERT family); this one gives segment types {types}"
        )


def segment_masks(
    attention_mask: np.ndarray, token_type_ids: np.ndarray, template: PairTemplate
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``(query_mask, doc_mask)`` of right-padded rows built by ``template``.

    >>> t = PairTemplate(np.array([101]), np.array([102]), np.array([102]), (0, 0, 0, 1, 1), 0)
    >>> q, d = segment_masks(np.array([[1, 1, 1, 1, 1, 0]]), np.array([[0, 0, 0, 1, 1, 0]]), t)
    >>> q.astype(int).tolist(), d.astype(int).tolist()
    ([[0, 1, 0, 0, 0, 0]], [[0, 0, 0, 1, 0, 0]])
    """
    real = attention_mask.astype(bool)
    prefix, middle, suffix = len(template.prefix), len(template.middle), len(template.suffix)
    special = (
        (template.types[0], prefix),
        (template.types[2], middle),
        (template.types[4], suffix),
    )

    def segment_length(type_id: int) -> np.ndarray:
        tokens = (real & (token_type_ids == type_id)).sum(1)
        return tokens - sum(n for t, n in special if t == type_id)

    q_len, d_len = segment_length(template.types[1]), segment_length(template.types[3])
    cols = np.arange(attention_mask.shape[1])[None, :]
    d_start = prefix + q_len + middle
    query = (cols >= prefix) & (cols < (prefix + q_len)[:, None])
    doc = (cols >= d_start[:, None]) & (cols < (d_start + d_len)[:, None])
    return query, doc


class CEDRBackend(Backend):
    """Runs a :class:`CEDRKNRM` on token batches; a ``Backend`` with one output column.

    Takes ownership of ``model``: it is moved to ``device`` and put in eval mode.
    """

    name = "torch-cedr"

    def __init__(self, model: CEDRKNRM, template: PairTemplate, *, device: str = "cpu") -> None:
        self.device = device
        self._torch_device = torch.device(device)
        self._template = template
        self._model = model.to(self._torch_device).eval()

    @torch.inference_mode()
    def forward(self, batch: TokenBatch) -> np.ndarray:
        if batch.token_type_ids is None:
            raise ConfigError("CEDR batches need token_type_ids")
        q_mask, d_mask = segment_masks(batch.attention_mask, batch.token_type_ids, self._template)

        def put(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).to(self._torch_device)

        scores = self._model(
            put(batch.input_ids),
            put(batch.attention_mask),
            put(batch.token_type_ids),
            query_mask=put(q_mask),
            doc_mask=put(d_mask),
        )
        return scores.float().cpu().numpy()[:, None]


class CEDRScorer:
    """Scores aligned (query, document) lists with a CEDR-KNRM model; a ``Scorer``.

    ``max_length`` defaults to the length the model was trained with (``config.max_length``);
    queries are never truncated. ``last_stats`` describes the latest call.
    """

    def __init__(
        self,
        model: CEDRKNRM,
        *,
        device: str = "cpu",
        max_length: int | None = None,
        token_budget: int | None = None,
    ) -> None:
        device = check_device(device)
        tokenizer = PairTokenizer(model.backbone.tokenizer)
        check_segments(tokenizer)
        max_length = model.config.max_length if max_length is None else max_length
        require_positive("max_length", max_length)
        if max_length > model.backbone.max_positions:
            raise ConfigError(
                f"max_length={max_length} exceeds the model's {model.backbone.max_positions} "
                "positions"
            )
        budget = default_token_budget(device) if token_budget is None else token_budget
        self.model = model
        self.max_length = max_length
        self.token_budget = budget
        self._engine = ScoringEngine(
            tokenizer,
            CEDRBackend(model, tokenizer.template, device=device),
            _HEAD,
            EngineSettings(max_length, token_budget=budget),
        )
        self.last_stats: InferenceStats | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str = "cpu",
        max_length: int | None = None,
        token_budget: int | None = None,
    ) -> CEDRScorer:
        """Load a directory written by ``save_cedr`` or a CEDR training run."""
        return cls(load_cedr(path), device=device, max_length=max_length, token_budget=token_budget)

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        """Float32 scores of the pairs ``(queries[i], docs[i])``, shape ``(len(queries),)``."""
        result = self._engine.score(queries, docs)
        self.last_stats = result.stats
        return result.heads[_HEAD.primary]
