"""CEDR-KNRM as a :class:`~crossrank.training.trainable.TrainableModel`.

:class:`CEDRTrainable` reuses the cross-encoder adapter's tokenisation (query cut to
``max_query_length``, document filling ``max_length``) and adds the query/document token
masks; its forward is the :class:`~crossrank.models.cedr.CEDRKNRM` forward and it saves in
the layout :func:`~crossrank.models.cedr_io.load_cedr` reads (``config.json``,
``model.safetensors``, ``backbone/``).

Example:
    >>> model = build_cedr(ModelConfig(backbone="all-MiniLM-L6-v2", max_length=256),  # doctest: +SKIP
    ...                    CEDRConfig(), seed=0)
    >>> logits = model(**model.collate(["a query"], ["a document"]))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from crossrank.inference.cedr import check_segments, segment_masks
from crossrank.models.cedr import CEDRKNRM, CEDRConfig, cedr_scores
from crossrank.models.cedr_io import BACKBONE_DIR, write_cedr_head
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.retrieval.encoder import resolve_model_path
from crossrank.training.config import ModelConfig
from crossrank.training.trainable import CrossEncoderTrainable, prune_layers, set_dropout

__all__ = ["CEDRTrainable", "build_cedr"]


class CEDRTrainable(CrossEncoderTrainable):
    """A :class:`CEDRKNRM` the trainer can train: ``encoder`` and ``head`` are its modules."""

    def __init__(
        self,
        model: CEDRKNRM,
        *,
        max_length: int,
        max_query_length: int = 64,
        pad_multiple: int = 1,
    ) -> None:
        super().__init__(
            model.backbone,
            max_length=max_length,
            max_query_length=max_query_length,
            pad_multiple=pad_multiple,
        )
        check_segments(self._tokenizer)
        self.head = model.head

    def forward(  # CEDR needs the token masks too
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

    def collate(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, Tensor]:
        batch = super().collate(queries, docs)
        q_mask, d_mask = segment_masks(
            batch["attention_mask"].numpy(),
            batch["token_type_ids"].numpy(),
            self._tokenizer.template,
        )
        return {
            **batch,
            "query_mask": torch.from_numpy(q_mask),
            "doc_mask": torch.from_numpy(d_mask),
        }

    def save_pretrained(self, directory: str | Path, *, max_shard_size: str = "15MB") -> Path:
        """The backbone into ``directory/backbone`` (sharded, see the parent class), then
        ``config.json`` and the ranking layer into ``directory``; each file lands atomically."""
        target = Path(directory).expanduser()
        super().save_pretrained(target / BACKBONE_DIR, max_shard_size=max_shard_size)
        write_cedr_head(target, self.head)
        return target


def build_cedr(
    config: ModelConfig, cedr: CEDRConfig, *, seed: int, device_type: str = "cpu"
) -> CEDRTrainable:
    """Load the cross-encoder ``config.backbone`` (a trained reranker or a plain encoder),
    prune and set dropout as for a cross-encoder, and add a CEDR head seeded by ``seed``.

    ``cedr.max_length`` is set to ``config.max_length`` (the length the model trains with).
    """
    backbone = CrossEncoderModel.from_pretrained(resolve_model_path(config.backbone), seed=seed)
    if config.keep_layers is not None:
        prune_layers(backbone.module, config.keep_layers)
    set_dropout(backbone.module, hidden=config.hidden_dropout, attention=config.attention_dropout)
    cedr = dataclasses.replace(cedr, max_length=config.max_length)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CEDRKNRM(backbone, cedr)
    return CEDRTrainable(
        model,
        max_length=config.max_length,
        max_query_length=config.max_query_length,
        pad_multiple=8 if device_type == "cuda" else 1,
    )
