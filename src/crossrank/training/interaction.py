"""Interaction models (K-NRM, Conv-KNRM, neural tensor, co-attention) as trainable modules.

:class:`InteractionTrainable` adapts an
:class:`~crossrank.models.interaction.InteractionModel` to the trainer's
:class:`~crossrank.training.trainable.TrainableModel` protocol: ``collate`` tokenises each
distinct text once with the model's term tokenizer and pads queries and documents apart,
``forward`` returns the model's logit per pair, and ``save_pretrained`` writes the
``config.json`` + ``model.safetensors`` (+ ``vocab.txt``) layout of
:func:`~crossrank.models.interaction.save_interaction_model`, so
:class:`~crossrank.models.interaction.InteractionScorer` serves a trained run directory via
:func:`~crossrank.models.interaction.load_interaction_model`.

Example:
    >>> import tempfile, torch
    >>> from crossrank.models.interaction import WordTokenizer, load_interaction_model
    >>> vocab = ("<pad>", "<unk>", "aspirin", "fever", "reduces")
    >>> emb = TermEmbeddings.from_tensor(torch.randn(5, 4), source="word2vec", vocabulary=vocab)
    >>> trainable = InteractionTrainable(build_interaction_model("knrm", emb),
    ...     WordTokenizer(vocab), max_query_length=8, max_doc_length=32)
    >>> batch = trainable.collate(["aspirin fever"], ["Aspirin reduces fever."])
    >>> sorted(batch), trainable(**batch).shape
    (['d_ids', 'd_mask', 'q_ids', 'q_mask'], torch.Size([1]))
    >>> path = trainable.save_pretrained(tempfile.mkdtemp(), max_shard_size="15MB")
    >>> type(load_interaction_model(path)).__name__
    'KNRM'
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from crossrank.errors import ConfigError, require_positive
from crossrank.models.interaction.base import InteractionModel
from crossrank.models.interaction.embeddings import TermEmbeddings
from crossrank.models.interaction.serialization import (
    VOCAB_FILE,
    build_interaction_model,
    default_config,
    save_interaction_model,
)
from crossrank.models.interaction.text import TermTokenizer, minilm_path, pad_sequences
from crossrank.retrieval.encoder import resolve_model_path
from crossrank.training.config import ModelConfig, interaction_config, parse_size

__all__ = ["InteractionTrainable", "build_interaction_trainable", "load_term_embeddings"]

logger = logging.getLogger(__name__)


class InteractionTrainable(nn.Module):
    """An interaction model behind the trainer's ``TrainableModel`` protocol.

    Queries are cut to ``max_query_length`` terms and documents to ``max_doc_length``; the
    same limits go to ``InteractionScorer`` when the trained model is served.
    """

    def __init__(
        self,
        model: InteractionModel,
        tokenizer: TermTokenizer,
        *,
        max_query_length: int,
        max_doc_length: int,
    ) -> None:
        super().__init__()
        require_positive("max_query_length", max_query_length)
        require_positive("max_doc_length", max_doc_length)
        self.model = model
        self.tokenizer = tokenizer
        self.max_query_length = max_query_length
        self.max_doc_length = max_doc_length

    def forward(self, q_ids: Tensor, q_mask: Tensor, d_ids: Tensor, d_mask: Tensor) -> Tensor:
        return self.model(q_ids, q_mask, d_ids, d_mask)

    def collate(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, Tensor]:
        if len(queries) != len(docs):
            raise ConfigError(f"got {len(queries)} queries but {len(docs)} docs; pairs must align")
        q_ids, q_mask = self._padded(queries, self.max_query_length)
        d_ids, d_mask = self._padded(docs, self.max_doc_length)
        return {"q_ids": q_ids, "q_mask": q_mask, "d_ids": d_ids, "d_mask": d_mask}

    def pair_lengths(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        return self._lengths(queries, self.max_query_length) + self._lengths(
            docs, self.max_doc_length
        )

    def _padded(self, texts: Sequence[str], max_length: int) -> tuple[Tensor, Tensor]:
        """Padded ids and mask of ``texts``; each distinct text is tokenised once."""
        unique, rows = _factorize(texts)
        ids, mask = pad_sequences(self.tokenizer.encode(unique, max_length), self.tokenizer.pad_id)
        index = torch.from_numpy(rows)
        return ids[index], mask[index]

    def _lengths(self, texts: Sequence[str], max_length: int) -> np.ndarray:
        unique, rows = _factorize(texts)
        encoded = self.tokenizer.encode(unique, max_length)
        lengths = np.fromiter((len(t) for t in encoded), dtype=np.int64, count=len(encoded))
        return lengths[rows]

    def save_pretrained(self, directory: str | Path, *, max_shard_size: str = "15MB") -> Path:
        """Write the interaction-model layout into ``directory``, file by file atomically.

        Other files there (a run's ``config.toml``, metrics) are kept. The format holds every
        weight in one ``model.safetensors``, so ``max_shard_size`` cannot split it; a larger
        file (e.g. the 47 MB MiniLM term matrix) is written whole, with a warning.
        """
        limit = parse_size(max_shard_size, "max_shard_size")
        target = Path(directory).expanduser()
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target, prefix=".crossrank-save-") as tmp:
            saved = save_interaction_model(self.model, Path(tmp) / "model")
            new = {f.name for f in saved.iterdir() if f.is_file()}
            stale = target / VOCAB_FILE
            if VOCAB_FILE not in new and stale.is_file():
                stale.unlink()  # a vocabulary of an earlier save would not match these weights
            for name in sorted(new):
                os.replace(saved / name, target / name)
        size = (target / "model.safetensors").stat().st_size
        if size > limit:
            logger.warning(
                "model.safetensors is %d bytes, above the %d-byte shard limit: the interaction "
                "format keeps every weight in one file",
                size,
                limit,
            )
        return target


def _factorize(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Unique texts (first-seen order) and each input's index into them."""
    unique = list(dict.fromkeys(texts))
    position = {text: i for i, text in enumerate(unique)}
    codes = np.fromiter(map(position.__getitem__, texts), dtype=np.int64, count=len(texts))
    return unique, codes


def load_term_embeddings(backbone: str, *, trainable: bool) -> TermEmbeddings:
    """Term embeddings named by ``model.backbone``: a word2vec/GloVe text file, or the MiniLM
    WordPiece matrix (``all-MiniLM-L6-v2`` or the path of that model)."""
    path = Path(backbone).expanduser()
    if path.is_file():
        return TermEmbeddings.from_word2vec_text(path, trainable=trainable)
    resolved = Path(resolve_model_path(backbone)).expanduser()
    if resolved.is_dir() and resolved.resolve() == minilm_path().resolve():
        return TermEmbeddings.from_minilm(trainable=trainable)
    raise ConfigError(
        f"model.backbone {backbone!r}: interaction models read term embeddings from "
        "all-MiniLM-L6-v2 or from a word2vec/GloVe text file"
    )


def build_interaction_trainable(config: ModelConfig, *, seed: int) -> InteractionTrainable:
    """A freshly initialised (``seed``) interaction model of ``config.arch``, ready to train."""
    embeddings = load_term_embeddings(config.backbone, trainable=config.train_embeddings)
    arch_config = interaction_config(
        config.arch, config.interaction, default_config(config.arch, embeddings)
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
        torch.manual_seed(seed)
        model = build_interaction_model(config.arch, embeddings, arch_config)
    return InteractionTrainable(
        model,
        embeddings.tokenizer(),
        max_query_length=config.max_query_length,
        max_doc_length=config.max_length,
    )
