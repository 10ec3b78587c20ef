"""Bulk tokenisation of queries and documents, and assembly of model inputs from token ids.

Queries and documents are tokenised once each (unique texts only, one Rust batch call each,
no special tokens), then every model input row is assembled in numpy from token ids with the
tokenizer's own pair template (``[CLS] q [SEP] d [SEP]``, ``<s> q </s></s> d </s>``, ...).
The result is token-for-token what ``tokenizer(q, d, truncation="only_second")`` produces,
without re-tokenising a query for each of its candidates.

Long documents are tokenised only as far as needed: the text is cut at a whitespace past the
needed token count (exact, since pre-tokenisation never merges across whitespace), so a 1 MB
document costs a few hundred tokens of work in truncation mode.

Example:
    >>> tok = PairTokenizer(hf_tokenizer)  # doctest: +SKIP
    >>> docs = tok.encode(["a long document ..."], max_tokens=254)  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from crossrank.errors import ConfigError

# Generous upper bound of characters per token when cutting long texts before tokenising.
_CHARS_PER_TOKEN = 12
_WHITESPACE = (" ", "\n", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Ragged:
    """Token id lists stored flat: row i is ``ids[offsets[i]:offsets[i + 1]]``."""

    ids: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def truncate(self, max_len: int) -> Ragged:
        """Every row cut to its first ``max_len`` ids (vectorised)."""
        lengths = np.minimum(self.lengths, max_len)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        index = (
            np.repeat(self.offsets[:-1], lengths)
            + np.arange(offsets[-1])
            - np.repeat(offsets[:-1], lengths)
        )
        return Ragged(self.ids[index], offsets)

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]]) -> Ragged:
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter(
            itertools.chain.from_iterable(rows), dtype=np.int64, count=int(offsets[-1])
        )
        return cls(ids, offsets)


@dataclass(frozen=True, slots=True)
class EncodedTexts:
    """Token ids of texts, possibly cut to ``max_tokens``; ``clipped[i]`` if text i had more."""

    tokens: Ragged
    clipped: np.ndarray


@dataclass(frozen=True, slots=True)
class PairTemplate:
    """Special tokens around (query, document) and the token type of each segment."""

    prefix: np.ndarray
    middle: np.ndarray
    suffix: np.ndarray
    types: tuple[int, int, int, int, int]  # prefix, query, middle, document, suffix
    pad_id: int

    @property
    def num_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> PairTemplate:
        """Read the template off one probe pair encoding (works for any fast tokenizer)."""
        enc = tokenizer("a", "b", return_token_type_ids=True, add_special_tokens=True)
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        types = np.asarray(enc["token_type_ids"], dtype=np.int64)
        seq = np.array([-1 if s is None else s for s in enc.sequence_ids(0)])
        q_pos, d_pos = np.flatnonzero(seq == 0), np.flatnonzero(seq == 1)
        if len(q_pos) == 0 or len(d_pos) == 0 or q_pos[-1] > d_pos[0]:
            raise ConfigError(f"{type(tokenizer).__name__} does not encode (query, document) pairs")
        pad_id = tokenizer.pad_token_id
        return cls(
            prefix=ids[: q_pos[0]],
            middle=ids[q_pos[-1] + 1 : d_pos[0]],
            suffix=ids[d_pos[-1] + 1 :],
            types=(
                int(types[0]) if q_pos[0] > 0 else 0,
                int(types[q_pos[0]]),
                int(types[q_pos[-1] + 1]) if d_pos[0] > q_pos[-1] + 1 else int(types[d_pos[0]]),
                int(types[d_pos[0]]),
                int(types[-1]) if len(ids) > d_pos[-1] + 1 else int(types[d_pos[-1]]),
            ),
            pad_id=int(pad_id) if pad_id is not None else 0,
        )


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """Padded model inputs (int64, right padded)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray | None

    @property
    def shape(self) -> tuple[int, int]:
        return self.input_ids.shape


class PairTokenizer:
    """Tokenises texts in bulk and assembles (query, document-span) rows into batches.

    ``ascii_fast_path`` tokenises ASCII texts without accent stripping where the normalizer
    would only strip accents in addition (:func:`ascii_normalizer_spec`; the same ids).
    """

    def __init__(self, tokenizer: Any, *, ascii_fast_path: bool = True) -> None:
        # A private copy of the Rust tokenizer with truncation/padding off: the checkpoint's
        # tokenizer.json may enable them, and crossrank truncates documents itself.
        spec = tokenizer.backend_tokenizer.to_str()
        self._rust = _bare_tokenizer(spec)
        # For ASCII texts, a copy without the accent stripping that is a no-op on them
        # (ascii_fast_path=False: every text through the full normalizer, for comparison).
        ascii_spec = ascii_normalizer_spec(spec) if ascii_fast_path else None
        self._rust_ascii = None if ascii_spec is None else _bare_tokenizer(ascii_spec)
        self.template = PairTemplate.from_tokenizer(tokenizer)
        self.uses_token_types = "token_type_ids" in tokenizer.model_input_names

    def encode(self, texts: Sequence[str], max_tokens: int | None = None) -> EncodedTexts:
        """Token ids without special tokens, each cut to ``max_tokens`` when given."""
        if max_tokens is None:
            tokens = self._encode(list(texts))
            return EncodedTexts(tokens, np.zeros(len(texts), dtype=bool))
        cap = _CHARS_PER_TOKEN * (max_tokens + 1) + 64
        cut = [_cut_at_whitespace(t, cap) for t in texts]
        tokens = self._encode(cut)
        # A cut text must still yield more than max_tokens tokens to prove its first
        # max_tokens are exact; the rare ones that do not (giant words) are redone in full.
        was_cut = np.fromiter(map(len, cut), dtype=np.int64, count=len(cut)) < np.fromiter(
            map(len, texts), dtype=np.int64, count=len(texts)
        )
        redo = np.flatnonzero(was_cut & (tokens.lengths <= max_tokens))
        if len(redo):
            rows = [tokens.row(i) for i in range(len(cut))]
            redone = self._encode([texts[i] for i in redo])
            for j, i in enumerate(redo):
                rows[i] = redone.row(j)
            tokens = Ragged.from_lists(rows)
        return EncodedTexts(tokens.truncate(max_tokens), tokens.lengths > max_tokens)

    def _encode(self, texts: list[str]) -> Ragged:
        is_ascii = [text.isascii() for text in texts]  # O(1) each: CPython records it
        if self._rust_ascii is None or not any(is_ascii):
            return Ragged.from_lists(_ids(self._rust, texts))
        if all(is_ascii):
            return Ragged.from_lists(_ids(self._rust_ascii, texts))
        rows: list[list[int]] = [[] for _ in texts]
        ascii_rows = [i for i, flag in enumerate(is_ascii) if flag]
        other_rows = [i for i, flag in enumerate(is_ascii) if not flag]
        for tokenizer, index in ((self._rust_ascii, ascii_rows), (self._rust, other_rows)):
            for i, ids in zip(index, _ids(tokenizer, [texts[i] for i in index]), strict=True):
                rows[i] = ids
        return Ragged.from_lists(rows)

    def assemble(
        self,
        queries: Ragged,
        docs: Ragged,
        *,
        query_index: np.ndarray,
        doc_index: np.ndarray,
        doc_start: np.ndarray,
        doc_end: np.ndarray,
        pad_multiple: int = 1,
    ) -> TokenBatch:
        """Padded inputs for rows ``query + docs[doc_index][doc_start:doc_end]``."""
        t = self.template
        q_len = queries.lengths[query_index]
        d_len = doc_end - doc_start
        total = t.num_special + q_len + d_len
        width = int(-(-int(total.max()) // pad_multiple) * pad_multiple)
        n = len(total)
        ids = np.full((n, width), t.pad_id, dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)
        zero = np.zeros(n, dtype=np.int64)
        col = zero + len(t.prefix)
        _place_constant(ids, types, zero, t.prefix, t.types[0])
        _place_ragged(
            ids,
            types,
            col=col,
            flat=queries.ids,
            src=queries.offsets[query_index],
            lengths=q_len,
            type_id=t.types[1],
        )
        col = col + q_len
        _place_constant(ids, types, col, t.middle, t.types[2])
        col = col + len(t.middle)
        d_src = docs.offsets[doc_index] + doc_start
        _place_ragged(
            ids, types, col=col, flat=docs.ids, src=d_src, lengths=d_len, type_id=t.types[3]
        )
        _place_constant(ids, types, col + d_len, t.suffix, t.types[4])
        mask = (np.arange(width)[None, :] < total[:, None]).astype(np.int64)
        return TokenBatch(ids, mask, types if self.uses_token_types else None)


def ascii_normalizer_spec(spec: str) -> str | None:
    """``spec`` (tokenizer.json text) without accent stripping, when that is all it changes.

    A BERT normalizer that strips accents decomposes every character (NFD) and drops combining
    marks: on ASCII text that changes nothing, and skipping it made MiniLM's tokenising of
    SciFact abstracts 1.27-1.31x faster on one thread (benchmarks/ascii_fast_path.py). For
    other normalizers: None.

    >>> ascii_normalizer_spec('{"normalizer": {"type": "Lowercase"}}') is None
    True
    """
    config = json.loads(spec)
    normalizer = config.get("normalizer") or {}
    if normalizer.get("type") != "BertNormalizer":
        return None
    strip = normalizer.get("strip_accents")
    if not (strip or (strip is None and normalizer.get("lowercase"))):
        return None
    config["normalizer"] = {**normalizer, "strip_accents": False}
    return json.dumps(config)


def _bare_tokenizer(spec: str) -> Tokenizer:
    rust = Tokenizer.from_str(spec)
    rust.no_truncation()
    rust.no_padding()
    return rust


def _ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    # encode_batch_fast (tokenizers >= 0.21) skips character offsets, which crossrank never
    # reads: the same ids, 16-19% faster (benchmarks/tokenizer_gil.py).
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    return [e.ids for e in encode(texts, add_special_tokens=False)]


def validate_texts(texts: Sequence[object], what: str) -> list[str]:
    """Texts as ``str``: UTF-8 bytes are decoded, anything else is a ConfigError naming it.

    >>> validate_texts(["ok", b"caf\\xc3\\xa9"], "document")
    ['ok', 'café']
    """
    out = list(texts)
    if set(map(type, out)) - {str}:
        for i, text in enumerate(out):
            if isinstance(text, bytes | bytearray):
                try:
                    out[i] = bytes(text).decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ConfigError(
                        f"{what} {i} is not valid UTF-8 ({err.reason} at byte {err.start})"
                    ) from err
            elif not isinstance(text, str):
                raise ConfigError(f"{what} {i} must be str, got {type(text).__name__}")
    try:
        "".join(out).encode("utf-8")
    except UnicodeEncodeError as err:
        bad = next(i for i, t in enumerate(out) if _unencodable(t))
        raise ConfigError(
            f"{what} {bad} is not valid Unicode text (lone surrogate: {err.reason})"
        ) from err
    return out


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _cut_at_whitespace(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    cut = max(text.rfind(ws, 0, cap) for ws in _WHITESPACE)
    return text[:cut] if cut > 0 else text


def _ragged_cols(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, position-within-row) for every element of rows with the given lengths."""
    rows = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return rows, np.arange(len(rows)) - starts


def _place_ragged(
    ids: np.ndarray,
    types: np.ndarray,
    *,
    col: np.ndarray,
    flat: np.ndarray,
    src: np.ndarray,
    lengths: np.ndarray,
    type_id: int,
) -> None:
    rows, j = _ragged_cols(lengths)
    ids[rows, col[rows] + j] = flat[src[rows] + j]
    types[rows, col[rows] + j] = type_id


def _place_constant(
    ids: np.ndarray, types: np.ndarray, col: np.ndarray, tokens: np.ndarray, type_id: int
) -> None:
    if len(tokens) == 0:
        return
    cols = col[:, None] + np.arange(len(tokens))[None, :]
    rows = np.arange(len(col))[:, None]
    ids[rows, cols] = tokens[None, :]
    types[rows, cols] = type_id
