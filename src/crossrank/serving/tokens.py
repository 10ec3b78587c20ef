"""Per-request token accounting: billed tokens, truncated documents, query checks, cuts.

The engine reports token and truncation totals per call, and the server merges many
requests into one call, so each request's figures are computed here with the engine's own
bulk tokenizer (:class:`~crossrank.inference.tokenize.PairTokenizer`) and span functions:
the same document caps, the same windows and the same BM25 passage choice as the engine,
hence the same numbers (``tests/serving/test_serving_tokens.py`` checks them against
``CrossEncoder.last_stats``). It costs one extra Rust tokenisation per request, small next to
the model; an engine hook returning per-pair figures would remove it.

Queries are checked here too (empty, or too long for any document token), so one bad
request is refused with 400 before it can share a model call with others.

Example:
    >>> counter = TokenCounter(hf_tokenizer, max_length=256)  # doctest: +SKIP
    >>> counter.count(["what is bm25"], ["BM25 is a ranking function"], None).tokens  # doctest: +SKIP
    12
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Encoding, Tokenizer

from crossrank.errors import ConfigError, require_positive
from crossrank.inference.passages import (
    PassageConfig,
    Spans,
    bm25_best_spans,
    clipped_by_windows,
    window_spans,
)
from crossrank.inference.tokenize import EncodedTexts, PairTokenizer


@dataclass(frozen=True, slots=True, eq=False)
class TokenCount:
    """Model-input tokens of a request (special tokens and all windows included) and, per
    pair, whether the document lost text (truncation, or windows capped by max_windows)."""

    tokens: int
    truncated: np.ndarray


class TokenCounter:
    """Counts the model inputs the engine will build for (query, document) pairs."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        require_positive("max_length", max_length)
        self._pairs = PairTokenizer(tokenizer)
        # Own copy of the Rust tokenizer (offsets and word ids for cuts), never truncating.
        self._rust = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._rust.no_truncation()
        self._rust.no_padding()
        self.max_length = max_length
        self.num_special = self._pairs.template.num_special

    def count(
        self, queries: Sequence[str], docs: Sequence[str], passages: PassageConfig | None
    ) -> TokenCount:
        """Token figures of aligned pairs; ConfigError names an empty or too-long query."""
        if len(queries) != len(docs):
            raise ConfigError(f"got {len(queries)} queries but {len(docs)} documents")
        if not docs:
            return TokenCount(0, np.zeros(0, dtype=bool))
        q_texts, q_of = _factorize(queries)
        d_texts, d_of = _factorize(docs)
        q_enc = self._pairs.encode(q_texts, max_tokens=self.max_length)
        q_len = self._check_queries(q_enc, q_of)[q_of]
        room = self.max_length - self.num_special - q_len
        d_enc = self._pairs.encode(d_texts, max_tokens=_doc_token_cap(room, passages))
        spans, truncated = self._spans(
            q_enc=q_enc, d_enc=d_enc, q_of=q_of, d_of=d_of, room=room, passages=passages
        )
        tokens = self.num_special + q_len[spans.owner] + spans.end - spans.start
        return TokenCount(int(tokens.sum()), truncated)

    def cut(self, docs: Sequence[str], max_tokens: int) -> list[str]:
        """Each document cut to at most ``max_tokens`` tokens, at a word start.

        Cutting where a word begins keeps the first tokens identical to those of the whole
        text (a cut inside a word could re-tokenise its start differently); a document whose
        token ``max_tokens`` continues a word loses that whole word. Short ones are kept.
        """
        require_positive("max_tokens", max_tokens)
        encodings = self._rust.encode_batch(list(docs), add_special_tokens=False)
        return [
            text if len(enc.ids) <= max_tokens else _cut_before_token(text, enc, max_tokens)
            for text, enc in zip(docs, encodings, strict=True)
        ]

    def _check_queries(self, q_enc: EncodedTexts, q_of: np.ndarray) -> np.ndarray:
        """Token count of each unique query; ConfigError unless a document token fits."""
        lengths = q_enc.tokens.lengths
        limit = self.max_length - self.num_special
        empty = np.flatnonzero(lengths == 0)
        if len(empty):
            pair = int(np.argmax(np.isin(q_of, empty)))
            raise ConfigError(f"query of pair {pair} is empty (no tokens)")
        too_long = np.flatnonzero(q_enc.clipped | (lengths >= limit))
        if len(too_long):
            pair = int(np.argmax(np.isin(q_of, too_long)))
            raise ConfigError(
                f"query of pair {pair} has {int(lengths[too_long[0]])}+ tokens: with the "
                f"server's max_length {self.max_length} no document token fits beside it "
                "(queries are never truncated)"
            )
        return lengths

    def _spans(
        self,
        *,
        q_enc: EncodedTexts,
        d_enc: EncodedTexts,
        q_of: np.ndarray,
        d_of: np.ndarray,
        room: np.ndarray,
        passages: PassageConfig | None,
    ) -> tuple[Spans, np.ndarray]:
        """The document spans the engine scores, and which pairs lose document text."""
        n = len(room)
        d_len = d_enc.tokens.lengths[d_of]
        d_clipped = d_enc.clipped[d_of]
        if passages is None:
            end = np.minimum(d_len, room)
            return Spans(np.arange(n), np.zeros(n, dtype=np.int64), end), (d_len > room) | d_clipped
        window = np.minimum(passages.window, room)
        firstp = passages.mode == "windows" and passages.aggregate == "firstp"
        spans = window_spans(d_len, window, passages.stride, 1 if firstp else passages.max_windows)
        if passages.mode == "windows":
            return spans, clipped_by_windows(d_len, spans, n) | d_clipped
        best = bm25_best_spans(
            spans,
            doc_ids=d_enc.tokens.ids,
            doc_start=d_enc.tokens.offsets[d_of],
            query_ids=q_enc.tokens.ids,
            query_start=q_enc.tokens.offsets[q_of],
            query_len=q_enc.tokens.lengths[q_of],
        )
        return best, (d_len > window) | d_clipped


def _factorize(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Unique texts in first-seen order and each text's index among them."""
    unique = list(dict.fromkeys(texts))
    lookup = {text: i for i, text in enumerate(unique)}
    return unique, np.fromiter(map(lookup.__getitem__, texts), dtype=np.int64, count=len(texts))


def _doc_token_cap(room: np.ndarray, passages: PassageConfig | None) -> int | None:
    """Document tokens that can matter; the engine tokenises exactly this far."""
    widest = int(room.max(initial=0))
    if passages is None:
        return widest
    window = min(passages.window, widest)
    if passages.mode == "windows" and passages.aggregate == "firstp":
        return window
    if passages.max_windows is not None:
        return (passages.max_windows - 1) * passages.stride + window
    return None


def _cut_before_token(text: str, encoding: Encoding, index: int) -> str:
    """``text`` up to where the word holding token ``index`` begins (whitespace trimmed)."""
    words = encoding.word_ids
    start = index
    while start > 0 and words[start] is not None and words[start - 1] == words[start]:
        start -= 1
    return text[: encoding.offsets[start][0]].rstrip()
