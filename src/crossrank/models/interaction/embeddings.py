"""The term-embedding input layer: MiniLM WordPiece embeddings or a word2vec/GloVe text file.

No download is ever needed: ``from_minilm`` reads the word-embedding matrix straight from the
offline backbone's ``model.safetensors`` (no transformers model is built). ``from_word2vec_text``
parses the word2vec/GloVe text format. Either can be frozen or trainable; frozen matrices are
still saved with a model, so a saved model directory is self-contained.

Example:
    >>> import torch
    >>> emb = TermEmbeddings.from_tensor(torch.eye(3))
    >>> emb(torch.tensor([[2, 0]])).tolist()
    [[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from crossrank.errors import ConfigError, DataFormatError, MissingDataError, ModelLoadError
from crossrank.models.interaction.text import (
    PAD_TOKEN,
    UNK_TOKEN,
    TermTokenizer,
    WordPieceTokenizer,
    WordTokenizer,
    minilm_path,
)

__all__ = [
    "EMBEDDING_SOURCES",
    "EmbeddingConfig",
    "TermEmbeddings",
    "WordVectors",
    "read_word2vec_text",
]

EMBEDDINGS_SCHEMA_VERSION = 1
# "tensor": a matrix handed over in code; it has no tokenizer of its own.
EMBEDDING_SOURCES = ("minilm", "word2vec", "tensor")
MINILM_KEYS = ("embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight")


@dataclass(frozen=True, slots=True)
class EmbeddingConfig:
    """Shape and origin of a term-embedding table.

    >>> EmbeddingConfig(vocab_size=20, dim=4).trainable
    False
    """

    vocab_size: int
    dim: int
    pad_id: int = 0
    trainable: bool = False
    source: str = "tensor"
    schema_version: int = EMBEDDINGS_SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ConfigError(f"pad_id must be in [0, {self.vocab_size}), got {self.pad_id!r}")
        if self.source not in EMBEDDING_SOURCES:
            raise ConfigError(f"source must be one of {EMBEDDING_SOURCES}, got {self.source!r}")
        if self.schema_version != EMBEDDINGS_SCHEMA_VERSION:
            raise ConfigError(f"unsupported EmbeddingConfig schema_version {self.schema_version!r}")


class TermEmbeddings(nn.Module):
    """Looks up term vectors: ids (*,) -> (*, dim). The padding row never receives gradient.

    ``vocabulary`` (word2vec source only) lists the word of every row, ``<pad>`` and ``<unk>``
    first, so the matching ``WordTokenizer`` can be rebuilt from a saved model.
    """

    def __init__(self, config: EmbeddingConfig, vocabulary: Sequence[str] | None = None) -> None:
        super().__init__()
        if (config.source == "word2vec") != (vocabulary is not None):
            raise ConfigError("a vocabulary is given exactly when the source is 'word2vec'")
        if vocabulary is not None and len(vocabulary) != config.vocab_size:
            raise ConfigError(
                f"vocabulary has {len(vocabulary)} words, expected {config.vocab_size}"
            )
        self.config = config
        self.vocabulary = None if vocabulary is None else tuple(vocabulary)
        self.embedding = nn.Embedding(config.vocab_size, config.dim, padding_idx=config.pad_id)
        self.embedding.weight.requires_grad_(config.trainable)

    @property
    def dim(self) -> int:
        return self.config.dim

    def forward(self, ids: Tensor) -> Tensor:
        return self.embedding(ids)

    @classmethod
    def from_tensor(
        cls,
        weight: Tensor,
        trainable: bool = False,
        pad_id: int = 0,
        source: str = "tensor",
        vocabulary: Sequence[str] | None = None,
    ) -> TermEmbeddings:
        """Wrap a (vocab_size, dim) matrix; the matrix is copied, never shared."""
        if weight.ndim != 2:
            raise ConfigError(f"embedding weight must be 2-D, got shape {tuple(weight.shape)}")
        config = EmbeddingConfig(
            vocab_size=int(weight.shape[0]),
            dim=int(weight.shape[1]),
            pad_id=pad_id,
            trainable=trainable,
            source=source,
        )
        module = cls(config, vocabulary).to(weight.dtype)
        with torch.no_grad():
            module.embedding.weight.copy_(weight)
        return module

    @classmethod
    def from_minilm(cls, trainable: bool = False) -> TermEmbeddings:
        """The offline MiniLM WordPiece matrix (30522 x 384); pair with ``WordPieceTokenizer``.

        (The example is skipped by doctest runs, which may lack the backbone package.)

        >>> TermEmbeddings.from_minilm().embedding.weight.shape  # doctest: +SKIP
        torch.Size([30522, 384])
        """
        weights_file = minilm_path() / "model.safetensors"
        try:
            # safe_open reads just this one tensor, not the whole 90 MB checkpoint.
            with safe_open(str(weights_file), framework="pt") as handle:
                key = next((k for k in MINILM_KEYS if k in handle.keys()), None)  # noqa: SIM118
                if key is None:
                    raise ModelLoadError(f"{weights_file} has none of the tensors {MINILM_KEYS}")
                weight = handle.get_tensor(key).float()
        except (OSError, SafetensorError) as err:
            raise ModelLoadError(f"cannot read {weights_file}: {err}") from err
        return cls.from_tensor(weight, trainable=trainable, pad_id=0, source="minilm")

    @classmethod
    def from_word2vec_text(cls, path: str | Path, trainable: bool = False) -> TermEmbeddings:
        """Embeddings from a word2vec/GloVe text file; pair with ``self.tokenizer()``.

        Row 0 is ``<pad>`` (zeros). Row 1, the out-of-vocabulary vector, is the file's own
        ``<unk>`` vector when it has one, else the mean of all vectors in the file.
        """
        vectors = read_word2vec_text(path)
        known = np.array([w != UNK_TOKEN for w in vectors.words])
        oov = vectors.vectors.mean(axis=0) if known.all() else vectors.vectors[~known][0]
        matrix = np.vstack([np.zeros_like(oov), oov, vectors.vectors[known]])
        words = [w for w in vectors.words if w != UNK_TOKEN]
        return cls.from_tensor(
            torch.from_numpy(matrix),
            trainable=trainable,
            source="word2vec",
            vocabulary=(PAD_TOKEN, UNK_TOKEN, *words),
        )

    def tokenizer(self) -> TermTokenizer:
        """The tokenizer whose ids index this table (MiniLM WordPiece or the word vocabulary)."""
        if self.config.source == "minilm":
            return WordPieceTokenizer.from_minilm()
        if self.vocabulary is not None:
            return WordTokenizer(self.vocabulary)
        raise ConfigError("embeddings built from a bare tensor have no tokenizer; pass one")


@dataclass(frozen=True, slots=True)
class WordVectors:
    """Words and their float32 vectors (n_words, dim), in file order."""

    words: tuple[str, ...]
    vectors: np.ndarray


def read_word2vec_text(path: str | Path) -> WordVectors:
    """Parse the word2vec/GloVe text format: optional "N D" header, then "word v1 ... vD" rows.

    Raises DataFormatError (naming file and line) for ragged rows, non-numeric or non-finite
    values, duplicate or reserved words, and a header that disagrees with the rows.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"embedding file not found: {path}")
    words: list[str] = []
    rows: list[np.ndarray] = []
    first_line: dict[str, int] = {}
    header: tuple[int, int] | None = None
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            fields = _decode(raw, path, line_no).split()
            if not fields:
                continue
            if line_no == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                header = (int(fields[0]), int(fields[1]))
                continue
            dim = header[1] if header else (len(rows[0]) if rows else len(fields) - 1)
            word, vector = fields[0], _parse_vector(fields[1:], dim, path, line_no)
            _check_word(word, first_line, path, line_no)
            first_line[word] = line_no
            words.append(word)
            rows.append(vector)
    if not rows:
        raise DataFormatError(path, None, "no word vectors found")
    if header is not None and header[0] != len(rows):
        raise DataFormatError(path, 1, f"header announces {header[0]} vectors, found {len(rows)}")
    return WordVectors(tuple(words), np.stack(rows))


def _decode(raw: bytes, path: Path, line_no: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(path, line_no, f"not valid UTF-8 ({err.reason})") from err


def _parse_vector(values: list[str], dim: int, path: Path, line_no: int) -> np.ndarray:
    if dim < 1 or len(values) != dim:
        raise DataFormatError(
            path, line_no, f"expected a word and {max(dim, 1)} values, got {len(values)} values"
        )
    try:
        vector = np.array(values, dtype=np.float32)
    except ValueError as err:
        raise DataFormatError(path, line_no, f"non-numeric value: {err}") from err
    if not np.isfinite(vector).all():
        bad = values[int(np.argmin(np.isfinite(vector)))]
        raise DataFormatError(path, line_no, f"non-finite value {bad!r}")
    return vector


def _check_word(word: str, first_line: dict[str, int], path: Path, line_no: int) -> None:
    if word == PAD_TOKEN:
        raise DataFormatError(path, line_no, f"the word {PAD_TOKEN!r} is reserved for padding")
    if word in first_line:
        raise DataFormatError(
            path, line_no, f"duplicate word {word!r} (first on line {first_line[word]})"
        )
