"""Data augmentation: synthetic queries from the corpus, query noise, passage extraction.

Pure functions over :class:`~crossrank.data.types.Document` and strings. Randomised ones
take a ``numpy.random.Generator`` and advance it, so one seeded generator makes a whole
pipeline reproducible. Skipped documents are counted in a DataWarning, never dropped
silently.

Example:
    >>> from crossrank.data.types import Document
    >>> title_queries([Document("d1", "Aspirin thins the blood.", "Aspirin and clotting")])
    [SyntheticPair(query='Aspirin and clotting', positive='Aspirin thins the blood.', doc_id='d1', kind='title')]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from crossrank.data.text import split_sentences
from crossrank.data.types import Document
from crossrank.errors import ConfigError, DataWarning, require_positive

__all__ = [
    "SyntheticPair",
    "extract_passages",
    "sentence_queries",
    "split_sentences",
    "term_dropout",
    "term_substitution",
    "title_queries",
]


@dataclass(frozen=True, slots=True)
class SyntheticPair:
    """A synthetic (query, positive passage) pair and where it came from."""

    query: str
    positive: str
    doc_id: str
    kind: str


def title_queries(docs: Iterable[Document]) -> list[SyntheticPair]:
    """Use each title as a query and the document's text (its abstract) as the positive.

    Documents with an empty title or text are skipped and counted in a DataWarning.
    """
    pairs: list[SyntheticPair] = []
    skipped = 0
    for doc in docs:
        title, text = doc.title.strip(), doc.text.strip()
        if not title or not text:
            skipped += 1
            continue
        pairs.append(SyntheticPair(title, text, doc.doc_id, "title"))
    _warn_skipped(skipped, "title_queries", "an empty title or text")
    return pairs


def sentence_queries(
    docs: Iterable[Document], rng: np.random.Generator, *, min_words: int = 4
) -> list[SyntheticPair]:
    """Pick one sentence (>= ``min_words`` words) as the query; the rest is the positive.

    Documents with fewer than two sentences, or with no sentence long enough, are
    skipped and counted in a DataWarning.

    >>> docs = [Document("d1", "Statins lower LDL cholesterol. They also reduce stroke risk.")]
    >>> pair = sentence_queries(docs, np.random.default_rng(0), min_words=3)[0]
    >>> (pair.query, pair.positive) in {
    ...     ("Statins lower LDL cholesterol.", "They also reduce stroke risk."),
    ...     ("They also reduce stroke risk.", "Statins lower LDL cholesterol.")}
    True
    """
    require_positive("min_words", min_words)
    pairs: list[SyntheticPair] = []
    single = no_long = 0
    for doc in docs:
        sentences = split_sentences(doc.text)
        if len(sentences) < 2:
            single += 1
            continue
        eligible = [i for i, s in enumerate(sentences) if len(s.split()) >= min_words]
        if not eligible:
            no_long += 1
            continue
        pick = eligible[int(rng.integers(len(eligible)))]
        rest = " ".join(s for i, s in enumerate(sentences) if i != pick)
        pairs.append(SyntheticPair(sentences[pick], rest, doc.doc_id, "sentence"))
    _warn_skipped(single, "sentence_queries", "fewer than two sentences")
    _warn_skipped(no_long, "sentence_queries", f"no sentence of >= {min_words} words")
    return pairs


def term_dropout(query: str, p: float, rng: np.random.Generator) -> str:
    """Drop each whitespace token with probability ``p``; at least one token always stays.

    >>> term_dropout("aspirin heart attack risk", 1.0, np.random.default_rng(0)) != ""
    True
    """
    tokens = _tokens("term_dropout", query)
    _check_probability("term_dropout", p)
    keep = rng.random(len(tokens)) >= p
    if not keep.any():
        keep[int(rng.integers(len(tokens)))] = True
    return " ".join(t for t, k in zip(tokens, keep.tolist(), strict=True) if k)


def term_substitution(
    query: str,
    replacements: Mapping[str, Sequence[str]] | Sequence[str],
    p: float,
    rng: np.random.Generator,
) -> str:
    """Replace each token with probability ``p``.

    ``replacements`` is either a synonym map (lowercased token -> alternatives; tokens
    without an entry stay) or a vocabulary to draw random replacement terms from.

    >>> term_substitution("heart attack", {"attack": ["infarction"]}, 1.0, np.random.default_rng(0))
    'heart infarction'
    """
    tokens = _tokens("term_substitution", query)
    _check_probability("term_substitution", p)
    if isinstance(replacements, str) or not isinstance(replacements, Mapping | Sequence):
        raise ConfigError("term_substitution: replacements must be a synonym map or a vocabulary")
    if not isinstance(replacements, Mapping) and not replacements:
        raise ConfigError("term_substitution: the vocabulary is empty")
    chosen = rng.random(len(tokens)) < p
    out = list(tokens)
    for i in np.flatnonzero(chosen).tolist():
        if isinstance(replacements, Mapping):
            options = replacements.get(tokens[i].lower())
            if options is None:
                continue
            if isinstance(options, str) or not options:
                raise ConfigError(
                    f"term_substitution: synonyms of {tokens[i].lower()!r} must be a "
                    f"non-empty list, got {options!r}"
                )
        else:
            options = replacements
        out[i] = options[int(rng.integers(len(options)))]
    return " ".join(out)


def extract_passages(text: str, window_words: int, stride_words: int) -> list[str]:
    """Cut a long text into overlapping windows of ``window_words`` words.

    Windows start every ``stride_words`` words (``stride <= window``, so no word is
    skipped); the last window is shifted back to end at the last word, so every passage
    of a text longer than the window has exactly ``window_words`` words. A shorter text
    is one passage; an empty text gives none.

    >>> extract_passages("a b c d e f g", window_words=3, stride_words=2)
    ['a b c', 'c d e', 'e f g']
    >>> extract_passages("a b c d e f", window_words=4, stride_words=3)
    ['a b c d', 'c d e f']
    """
    require_positive("window_words", window_words)
    require_positive("stride_words", stride_words)
    if stride_words > window_words:
        raise ConfigError(
            f"stride_words ({stride_words}) must be <= window_words ({window_words}), "
            "or words between windows are lost"
        )
    words = text.split()
    if len(words) <= window_words:
        return [" ".join(words)] if words else []
    last = len(words) - window_words
    starts = list(range(0, last + 1, stride_words))
    if starts[-1] != last:
        starts.append(last)
    return [" ".join(words[s : s + window_words]) for s in starts]


def _tokens(name: str, query: str) -> list[str]:
    tokens = query.split()
    if not tokens:
        raise ConfigError(f"{name}: query is empty: {query!r}")
    return tokens


def _check_probability(name: str, p: float) -> None:
    if isinstance(p, bool) or not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ConfigError(f"{name}: p must be in [0, 1], got {p!r}")


def _warn_skipped(count: int, name: str, reason: str) -> None:
    if count:
        warnings.warn(
            f"{name}: skipped {count} document(s) with {reason}", DataWarning, stacklevel=3
        )
