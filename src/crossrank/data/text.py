"""Plain-text helpers shared by training (synthetic queries) and evaluation (perturbations)."""

from __future__ import annotations

import re

# Tokens ending in "." that rarely end a sentence in scientific and web text.
_ABBREVIATION_LIST = """
e.g. i.e. al. etc. vs. v. cf. p. approx. ca. resp. fig. figs. eq. eqs. ref. refs. no. nos. vol.
pp. dr. mr. mrs. ms. prof. st. inc. ltd. jr. sr. u.s. u.k. e.u. jan. feb. mar. apr. jun.
jul. aug. sep. sept. oct. nov. dec.
"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split())
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace.
# Decimals ("3.5") and inner dots ("e.g.") never match because no whitespace follows the dot.
_BOUNDARY = re.compile(r"[.!?][\"')\]]*\s+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences with a regex, keeping abbreviations and decimals intact.

    >>> split_sentences("Doses, e.g. 2.5 mg, helped. Fig. 2 shows it! Did it? Yes.")
    ['Doses, e.g. 2.5 mg, helped.', 'Fig. 2 shows it!', 'Did it?', 'Yes.']
    """
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if not _ends_sentence(text, start, match):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


def _ends_sentence(text: str, start: int, match: re.Match[str]) -> bool:
    """Whether a candidate boundary really ends a sentence."""
    following = text[match.end() : match.end() + 1]
    before = text[match.start() - 1 : match.start()]
    words = text[start : match.start() + 1].split()
    last_word = words[-1].lstrip("([{\"'").lower() if words else ""
    # A lowercase continuation ("approx. five"), a known abbreviation ("e.g.", "(ref."),
    # a list number ("1. Aspirin ...") or a decimal broken by a stray space ("10. 4%")
    # does not end a sentence.
    if following.islower() or last_word in _ABBREVIATIONS:
        return False
    if len(words) == 1 and last_word.rstrip(".").isdigit():
        return False
    return not (before.isdigit() and following.isdigit() and text[match.start()] == ".")
