"""Per-request token accounting: billed tokens, truncated documents, query checks, cuts.

The engine reports token and truncation totals per call, and the server merges many
requests into one call, so each request's figures come from the engine's own planning step
(:class:`~crossrank.inference.planning.PairPlanner`, what ``ScoringEngine.count_tokens``
runs): the same tokenizer, document caps, windows and BM25 passage choice, hence the same
numbers (``tests/serving/test_serving_tokens.py`` checks them against
``CrossEncoder.last_stats``). It costs one extra Rust tokenisation per request, small next
to the model.

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

from crossrank.errors import require_positive
from crossrank.inference.passages import PassageConfig
from crossrank.inference.planning import PairPlanner
from crossrank.inference.tokenize import PairTokenizer


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
        self._planner = PairPlanner(PairTokenizer(tokenizer), max_length)
        # Own copy of the Rust tokenizer (offsets and word ids for cuts), never truncating.
        self._rust = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._rust.no_truncation()
        self._rust.no_padding()
        self.max_length = max_length

    def count(
        self, queries: Sequence[str], docs: Sequence[str], passages: PassageConfig | None
    ) -> TokenCount:
        """Token figures of aligned pairs; ConfigError names an empty or too-long query."""
        pairs = self._planner.count(queries, docs, passages)
        return TokenCount(int(pairs.tokens.sum()), pairs.truncated)

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


def _cut_before_token(text: str, encoding: Encoding, index: int) -> str:
    """``text`` up to where the word holding token ``index`` begins (whitespace trimmed)."""
    words = encoding.word_ids
    start = index
    while start > 0 and words[start] is not None and words[start - 1] == words[start]:
        start -= 1
    return text[: encoding.offsets[start][0]].rstrip()
