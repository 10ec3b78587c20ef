"""What the trainer trains: the :class:`TrainableModel` protocol and its cross-encoder adapter.

Any ``nn.Module`` that turns (query, document) texts into a padded batch (``collate``),
maps that batch to one logit per pair (``forward(**batch) -> (n,)``), reports pair lengths
for length bucketing and saves itself can be trained; interaction models (K-NRM, ...) plug
in through a small adapter of their own. :class:`CrossEncoderTrainable` adapts
:class:`~crossrank.models.cross_encoder.CrossEncoderModel`: inputs are built with the
inference tokenizer (query cut to ``max_query_length``, document filling the rest of
``max_length``), so training sees exactly the token rows inference will score.

Example:
    >>> model = CrossEncoderModel.from_pretrained("path/to/encoder")  # doctest: +SKIP
    >>> trainable = CrossEncoderTrainable(model, max_length=256)  # doctest: +SKIP
    >>> logits = trainable(**trainable.collate(["a query"], ["a document"]))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from crossrank.errors import ConfigError
from crossrank.inference.tokenize import PairTokenizer, Ragged
from crossrank.models.cls_only import cls_only, install_cls_only
from crossrank.models.cpu_dropout import install_cpu_dropout
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.padding_mask import mask_for, takes_expanded_mask
from crossrank.training.config import parse_size

__all__ = ["CrossEncoderTrainable", "TrainableModel", "prune_layers", "set_dropout"]

_WEIGHT_FILE_PREFIXES = ("model.safetensors", "model-")
# Upper bound of a safetensors header entry besides the tensor name:
# '"name":{"dtype":"BF16","shape":[n,n,n,n],"data_offsets":[n,n]},' with 12-digit numbers.
_HEADER_BYTES_PER_TENSOR = 128
logger = logging.getLogger(__name__)


@runtime_checkable
class TrainableModel(Protocol):
    """An ``nn.Module`` the trainer can train (see the module docstring)."""

    def collate(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, Tensor]:
        """CPU tensors for aligned query/document lists; ``forward(**batch)`` consumes them."""
        ...

    def pair_lengths(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        """Input length (tokens) of each pair, used to bucket batches by length."""
        ...

    def forward(self, **batch: Tensor) -> Tensor:
        """One logit per pair, shape ``(n,)``."""
        ...

    def save_pretrained(self, directory: str | Path, *, max_shard_size: str) -> Path:
        """Write the trained model where its loader reads it; returns the directory."""
        ...


class CrossEncoderTrainable(nn.Module):
    """A :class:`CrossEncoderModel` as a trainable module scoring its primary head.

    A binary or regression head yields its logit; a graded head yields the expected grade
    (differentiable), so group losses rank by the same score inference reports.
    """

    def __init__(
        self,
        model: CrossEncoderModel,
        *,
        max_length: int,
        max_query_length: int = 64,
        pad_multiple: int = 1,
    ) -> None:
        super().__init__()
        self._tokenizer = PairTokenizer(model.tokenizer)
        special = self._tokenizer.template.num_special
        if max_length > model.max_positions:
            raise ConfigError(
                f"max_length={max_length} exceeds the model's {model.max_positions} positions"
            )
        if max_length - special - max_query_length < 1:
            raise ConfigError(
                f"max_length={max_length} leaves no document token beside a query of "
                f"max_query_length={max_query_length} and {special} special tokens"
            )
        self.encoder = model.module
        self.heads = model.heads
        self.tokenizer = model.tokenizer
        self.max_length = max_length
        self.max_query_length = max_query_length
        self.pad_multiple = pad_multiple
        head = model.heads.head(model.heads.primary)
        self._columns = model.heads.slices()[head.name]
        self._graded = head.kind == "graded"
        # Only position 0 of the last layer reaches the loss; skip the rest of that layer.
        self.cls_only = install_cls_only(self.encoder)
        # Faster dropout masks and blocked attention dropout on the CPU (same computation).
        self.cpu_dropout = install_cpu_dropout(self.encoder)
        # On CUDA the padding mask goes in expanded: a 2D one makes transformers wait for the
        # GPU in every forward pass (crossrank.models.padding_mask).
        self.expanded_mask = takes_expanded_mask(self.encoder)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        mask = mask_for(self.encoder, attention_mask, self.expanded_mask)
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        with cls_only(self.encoder):
            logits = self.encoder(**inputs).logits[:, self._columns]
        if self._graded:
            grades = torch.arange(logits.shape[1], device=logits.device, dtype=torch.float32)
            return torch.softmax(logits.float(), dim=1) @ grades
        return logits[:, 0]

    def collate(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, Tensor]:
        q, d, q_of, d_of, doc_end = self._encode(queries, docs)
        batch = self._tokenizer.assemble(
            q,
            d,
            query_index=q_of,
            doc_index=d_of,
            doc_start=np.zeros_like(doc_end),
            doc_end=doc_end,
            pad_multiple=self.pad_multiple,
        )
        out = {
            "input_ids": torch.from_numpy(batch.input_ids),
            "attention_mask": torch.from_numpy(batch.attention_mask),
        }
        if batch.token_type_ids is not None:
            out["token_type_ids"] = torch.from_numpy(batch.token_type_ids)
        return out

    def pair_lengths(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        q, _, q_of, _, doc_end = self._encode(queries, docs)
        return self._tokenizer.template.num_special + q.lengths[q_of] + doc_end

    def _encode(
        self, queries: Sequence[str], docs: Sequence[str]
    ) -> tuple[Ragged, Ragged, np.ndarray, np.ndarray, np.ndarray]:
        """Token ids of the unique texts, each pair's indices into them, and doc cut points."""
        q_texts, q_of = _factorize(queries)
        d_texts, d_of = _factorize(docs)
        q = self._tokenizer.encode(q_texts, max_tokens=self.max_query_length).tokens
        room = self.max_length - self._tokenizer.template.num_special - q.lengths[q_of]
        d = self._tokenizer.encode(d_texts, max_tokens=int(room.max(initial=1))).tokens
        return q, d, q_of, d_of, np.minimum(d.lengths[d_of], room)

    def save_pretrained(self, directory: str | Path, *, max_shard_size: str = "15MB") -> Path:
        """Plain Hugging Face layout (config, safetensors shards, tokenizer), file by file atomic.

        Every shard file, header included, holds at most ``max_shard_size`` bytes unless a
        single tensor is larger (transformers never splits a tensor; such a tensor gets a file
        of its own and a warning). Weight files of an earlier save that the new one does not
        overwrite are removed, so the index never mixes two saves.
        """
        limit = parse_size(max_shard_size, "max_shard_size")
        target = Path(directory).expanduser()
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target, prefix=".crossrank-save-") as tmp:
            self.encoder.save_pretrained(
                tmp, safe_serialization=True, max_shard_size=self._tensor_budget(limit)
            )
            _warn_oversized(Path(tmp), limit)
            self.tokenizer.save_pretrained(tmp)
            new = {f.name for f in Path(tmp).iterdir() if f.is_file()}
            for old in target.iterdir():
                if (
                    old.is_file()
                    and old.name.startswith(_WEIGHT_FILE_PREFIXES)
                    and old.name not in new
                ):
                    old.unlink()
            mode = _default_file_mode()
            for name in sorted(new):
                # Some writers create 0600 temp files; saved weights get the usual mode.
                os.chmod(Path(tmp) / name, mode)
                os.replace(Path(tmp) / name, target / name)
        return target

    def _tensor_budget(self, limit: int) -> int:
        """Tensor bytes per shard that leave room for the safetensors header.

        transformers counts tensor bytes only; the JSON header adds at most about
        ``len(name) + _HEADER_BYTES_PER_TENSOR`` bytes per tensor (dtype, shape, offsets).
        """
        header = 8 + sum(len(name) + _HEADER_BYTES_PER_TENSOR for name in self.encoder.state_dict())
        return max(limit - header, limit // 2)


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _warn_oversized(directory: Path, limit: int) -> None:
    big = {f.name: f.stat().st_size for f in directory.glob("*.safetensors")}
    big = {name: size for name, size in big.items() if size > limit}
    if big:
        logger.warning(
            "weight files above the %d-byte shard limit (one tensor each, which transformers "
            "never splits): %s",
            limit,
            big,
        )


def _factorize(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Unique texts (first-seen order) and each input's index into them."""
    unique = list(dict.fromkeys(texts))
    position = {text: i for i, text in enumerate(unique)}
    codes = np.fromiter(map(position.__getitem__, texts), dtype=np.int64, count=len(texts))
    return unique, codes


def prune_layers(module: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the listed encoder layers (BERT/RoBERTa/ELECTRA-style ``encoder.layer``).

    The config's ``num_hidden_layers`` follows, so the saved checkpoint loads as a smaller
    model of the same family.
    """
    encoder = getattr(getattr(module, "base_model", module), "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ConfigError(
            f"keep_layers: {type(module).__name__} has no encoder.layer list to prune"
        )
    bad = [i for i in keep if not 0 <= i < len(layers)]
    if bad:
        raise ConfigError(f"keep_layers {bad} out of range: the model has {len(layers)} layers")
    encoder.layer = nn.ModuleList([layers[i] for i in keep])
    module.config.num_hidden_layers = len(keep)
    for new_index, layer in enumerate(encoder.layer):
        for sub in layer.modules():
            if hasattr(sub, "layer_idx"):  # cache bookkeeping of decoder-capable layers
                sub.layer_idx = new_index


def set_dropout(module: nn.Module, *, hidden: float | None, attention: float | None) -> None:
    """Set dropout rates in place (and in the config, so the saved checkpoint records them).

    Attention-probability dropout is every ``nn.Dropout`` under ``attention.self``; every
    other ``nn.Dropout`` (embeddings, residual branches, classifier) counts as hidden.
    """
    config = getattr(module, "config", None)
    if hidden is not None and hasattr(config, "hidden_dropout_prob"):
        config.hidden_dropout_prob = hidden
    if attention is not None and hasattr(config, "attention_probs_dropout_prob"):
        config.attention_probs_dropout_prob = attention
    for name, sub in module.named_modules():
        if not isinstance(sub, nn.Dropout):
            continue
        rate = attention if ".attention.self." in f".{name}" else hidden
        if rate is not None:
            sub.p = rate
