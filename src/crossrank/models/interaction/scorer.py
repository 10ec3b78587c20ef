"""``InteractionScorer``: any interaction model behind the ``crossrank.protocols.Scorer`` API.

Texts are tokenised once each (duplicates, e.g. a query repeated over its candidates, are
encoded once), pairs are batched by document length to limit padding, and scoring runs under
``torch.inference_mode``.

Example:
    >>> import torch
    >>> from crossrank.models.interaction import KNRM, KNRMConfig, TermEmbeddings, WordTokenizer
    >>> tokenizer = WordTokenizer(("<pad>", "<unk>", "cats", "purr", "dogs", "bark"))
    >>> model = KNRM(KNRMConfig(), TermEmbeddings.from_tensor(torch.randn(6, 4)))
    >>> scorer = InteractionScorer(model, tokenizer)
    >>> scorer.score(["cats", "cats"], ["cats purr", "dogs bark"]).shape
    (2,)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from crossrank.errors import ConfigError, require_positive
from crossrank.models.interaction.base import InteractionModel
from crossrank.models.interaction.text import TermTokenizer, pad_sequences

__all__ = ["InteractionScorer"]


class InteractionScorer:
    """Scores aligned (query, doc) string pairs with an interaction model; a ``Scorer``.

    The model is moved to ``device`` (as ``nn.Module.to`` does). During ``score`` it is put in
    eval mode and its previous train/eval mode is restored afterwards, so a trainer can
    validate with the model it is training.
    """

    def __init__(
        self,
        model: InteractionModel,
        tokenizer: TermTokenizer,
        *,
        max_query_len: int = 32,
        max_doc_len: int = 256,
        batch_size: int = 64,
        device: str | torch.device = "cpu",
    ) -> None:
        require_positive("max_query_len", max_query_len)
        require_positive("max_doc_len", max_doc_len)
        require_positive("batch_size", batch_size)
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.max_query_len = max_query_len
        self.max_doc_len = max_doc_len
        self.batch_size = batch_size

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        """Score of every pair (queries[i], docs[i]) as float32, shape (len(queries),)."""
        if len(queries) != len(docs):
            raise ConfigError(f"got {len(queries)} queries but {len(docs)} docs; pairs must align")
        if not queries:
            return np.empty(0, dtype=np.float32)
        q_ids, q_lengths, q_rows = self._encode_unique(queries, self.max_query_len)
        d_ids, d_lengths, d_rows = self._encode_unique(docs, self.max_doc_len)
        scores = np.empty(len(queries), dtype=np.float32)
        # Longest documents first, so each batch pads to similar lengths.
        order = np.argsort(-d_lengths[d_rows], kind="stable")
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    scores[batch] = self._score_batch(
                        _take(q_ids, q_lengths, q_rows[batch]),
                        _take(d_ids, d_lengths, d_rows[batch]),
                    )
        finally:
            self.model.train(was_training)
        return scores

    def _encode_unique(
        self, texts: Sequence[str], max_length: int
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Padded ids of the distinct texts, their lengths, and each input's row among them."""
        unique, rows = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        ids, mask = pad_sequences(
            self.tokenizer.encode(list(unique), max_length), self.tokenizer.pad_id
        )
        return ids, mask.sum(1).numpy(), rows.reshape(-1)

    def _score_batch(
        self, queries: tuple[torch.Tensor, torch.Tensor], docs: tuple[torch.Tensor, torch.Tensor]
    ) -> np.ndarray:
        q_ids, q_mask = (t.to(self.device) for t in queries)
        d_ids, d_mask = (t.to(self.device) for t in docs)
        logits = self.model(q_ids, q_mask, d_ids, d_mask)
        return logits.float().cpu().numpy()


def _take(
    ids: torch.Tensor, lengths: np.ndarray, rows: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of a padded id matrix, trimmed to the longest of them, with their mask."""
    width = max(1, int(lengths[rows].max()))
    index = torch.from_numpy(rows)
    mask = torch.arange(width)[None, :] < torch.from_numpy(lengths[rows])[:, None]
    return ids[index, :width], mask
