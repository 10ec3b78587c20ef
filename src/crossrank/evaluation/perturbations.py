"""Text perturbations of queries and documents for the robustness suite.

Every perturbation is a small pure function ``(text, rng, strength) -> text`` driven by a
seeded ``numpy.random.Generator``. ``strength`` in (0, 1] is the fraction of eligible
units (words, sentences) that are perturbed, rounded up, so a text with any eligible unit
always changes; a text with none is returned unchanged. Perturbations that only edit
words in place (typos, case, synonyms) keep the original whitespace; the ones that add,
drop or reorder words or sentences rejoin them with single spaces.

:data:`PERTURBATIONS` names each perturbation with its target (``"query"`` or
``"document"``); :func:`crossrank.evaluation.robustness.run_robustness` runs them.

Example:
    >>> rng = np.random.default_rng(0)
    >>> duplicate_terms("aspirin risk", rng, 0.5) in {"aspirin aspirin risk", "aspirin risk risk"}
    True
"""

from __future__ import annotations

import functools
import json
import math
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal, TypeVar

import numpy as np

from crossrank.data.text import split_sentences
from crossrank.errors import ConfigError

__all__ = [
    "PERTURBATIONS",
    "Perturbation",
    "PerturbationSpec",
    "SynonymMap",
    "Target",
    "append_irrelevant",
    "builtin_synonyms",
    "change_case",
    "check_strength",
    "delete_terms",
    "duplicate_terms",
    "identity",
    "shuffle_sentences",
    "substitute_synonyms",
    "typos",
]

Target = Literal["query", "document"]
Perturbation = Callable[[str, np.random.Generator, float], str]
SynonymMap = Mapping[str, Sequence[str]]
_T = TypeVar("_T")

_WHITESPACE = re.compile(r"(\s+)")  # split keeps separators: words at even indices
_CORE = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)  # leading punct, word, trailing punct
_MIN_TYPO_LETTERS = 4
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, str]:
    # Each QWERTY row sits about half a key right of the row above, so key c of a row
    # touches keys c and c+1 of the row above and c-1 and c of the row below.
    near: dict[str, str] = {}
    for r, row in enumerate(_ROWS):
        above = _ROWS[r - 1] if r > 0 else ""
        below = _ROWS[r + 1] if r + 1 < len(_ROWS) else ""
        for c, key in enumerate(row):
            keys = row[max(c - 1, 0) : c] + row[c + 1 : c + 2]
            keys += above[c : c + 2] + below[max(c - 1, 0) : c + 1]
            near[key] = keys
    return near


_NEIGHBOURS = _keyboard_neighbours()


def identity(text: str, rng: np.random.Generator, strength: float) -> str:
    """The control condition: returns ``text`` unchanged (the scorer should agree)."""
    return text


def typos(text: str, rng: np.random.Generator, strength: float) -> str:
    """Put one typo (adjacent swap, drop, insert or substitute of a neighbouring QWERTY key)
    in a fraction of the words with at least 4 letters; a word's first letter is kept.

    >>> typos("a heart attack", np.random.default_rng(0), 1.0).split()[0]
    'a'
    """
    check_strength(strength)
    parts = _WHITESPACE.split(text)
    eligible = [i for i in range(0, len(parts), 2) if _long_enough(parts[i])]
    picked = _pick(rng, len(eligible), strength)
    # One batch of uniforms per call (op, position, key) instead of scalar draws per word.
    for k, draws in zip(picked, rng.random((len(picked), 3)).tolist(), strict=True):
        parts[eligible[k]] = _typo(parts[eligible[k]], draws)
    return "".join(parts)


def delete_terms(text: str, rng: np.random.Generator, strength: float) -> str:
    """Delete a fraction of the words, always keeping at least one.

    >>> delete_terms("statins lower blood cholesterol", np.random.default_rng(0), 0.5).count(" ")
    1
    """
    check_strength(strength)
    words = text.split()
    if len(words) < 2:
        return text
    dropped = set(_pick(rng, len(words), strength, limit=len(words) - 1))
    return " ".join(w for i, w in enumerate(words) if i not in dropped)


def substitute_synonyms(
    text: str, rng: np.random.Generator, strength: float, synonyms: SynonymMap | None = None
) -> str:
    """Replace a fraction of the words found in ``synonyms`` (lowercase word -> alternatives;
    default: the built-in map) by a random alternative, keeping punctuation and capitals.

    >>> substitute_synonyms("Cancer risk.", np.random.default_rng(0), 1.0, {"risk": ["odds"]})
    'Cancer odds.'
    """
    check_strength(strength)
    table = builtin_synonyms() if synonyms is None else synonyms
    parts = _WHITESPACE.split(text)
    eligible = [i for i in range(0, len(parts), 2) if _split_word(parts[i])[1].lower() in table]
    picked = _pick(rng, len(eligible), strength)
    for k, u in zip(picked, rng.random(len(picked)).tolist(), strict=True):
        lead, core, trail = _split_word(parts[eligible[k]])
        options = _synonym_options(table, core.lower())
        parts[eligible[k]] = lead + _match_case(_choose(options, u), core) + trail
    return "".join(parts)


def change_case(text: str, rng: np.random.Generator, strength: float) -> str:
    """Rewrite a fraction of the words in UPPER, lower or Title case (a form that differs).

    >>> change_case("BRCA1", np.random.default_rng(0), 1.0) in {"brca1", "Brca1"}
    True
    """
    check_strength(strength)
    parts = _WHITESPACE.split(text)
    # A word has another case form exactly when it holds a cased letter (upper != lower).
    eligible = [i for i in range(0, len(parts), 2) if parts[i].upper() != parts[i].lower()]
    picked = _pick(rng, len(eligible), strength)
    for k, u in zip(picked, rng.random(len(picked)).tolist(), strict=True):
        parts[eligible[k]] = _choose(_case_forms(parts[eligible[k]]), u)
    return "".join(parts)


def duplicate_terms(text: str, rng: np.random.Generator, strength: float) -> str:
    """Repeat a fraction of the words right after themselves ("risk" -> "risk risk")."""
    check_strength(strength)
    words = text.split()
    doubled = set(_pick(rng, len(words), strength))
    return " ".join(w for i, w in enumerate(words) for _ in range(2 if i in doubled else 1))


def shuffle_sentences(text: str, rng: np.random.Generator, strength: float) -> str:
    """Permute a fraction (at least two) of the sentences among their positions.

    >>> shuffle_sentences("One. Two.", np.random.default_rng(0), 0.1)
    'Two. One.'
    """
    check_strength(strength)
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return text
    chosen = np.sort(_pick(rng, len(sentences), strength, minimum=2))
    moved = rng.permutation(chosen)
    if np.array_equal(moved, chosen):  # a permutation that moves nothing is no perturbation
        moved = np.roll(chosen, 1)
    out = list(sentences)
    for dst, src in zip(chosen.tolist(), moved.tolist(), strict=True):
        out[dst] = sentences[src]
    return " ".join(out)


def append_irrelevant(
    text: str, rng: np.random.Generator, strength: float, pool: Sequence[str]
) -> str:
    """Append ``ceil(strength * sentences)`` consecutive pool sentences not found in ``text``,
    starting at a random pool position (the pool holds sentences of other documents).

    >>> append_irrelevant("Aspirin thins blood.", np.random.default_rng(0), 1.0, ["Rain falls."])
    'Aspirin thins blood. Rain falls.'
    """
    check_strength(strength)
    if not pool:
        raise ConfigError("append_irrelevant: the sentence pool is empty")
    wanted = math.ceil(strength * max(1, len(split_sentences(text))))
    start = int(rng.integers(len(pool)))
    picked: list[str] = []
    for offset in range(len(pool)):
        sentence = pool[(start + offset) % len(pool)]
        # Skipping sentences already in the text keeps a document from "gaining" its own text.
        if sentence and sentence not in text and sentence not in picked:
            picked.append(sentence)
            if len(picked) == wanted:
                break
    if not picked:
        raise ConfigError("append_irrelevant: every pool sentence already occurs in the text")
    return " ".join([text, *picked])


@dataclass(frozen=True, slots=True)
class PerturbationSpec:
    """A named perturbation of queries or documents.

    ``fn`` is a :data:`Perturbation`, or takes a ``pool`` keyword too when ``needs_pool``
    (sentences of other documents, built by :func:`run_robustness`).
    """

    name: str
    target: Target
    fn: Callable[..., str]
    needs_pool: bool = False

    def bind(self, pool: Sequence[str]) -> Perturbation:
        """The ``(text, rng, strength)`` function, with ``pool`` bound when needed."""
        return functools.partial(self.fn, pool=pool) if self.needs_pool else self.fn


def _registry() -> Mapping[str, PerturbationSpec]:
    specs = [PerturbationSpec("identity", "query", identity)]
    both: dict[str, Perturbation] = {
        "typos": typos,
        "delete_terms": delete_terms,
        "synonyms": substitute_synonyms,
        "case": change_case,
    }
    for prefix, target in (("query", "query"), ("doc", "document")):
        specs += [PerturbationSpec(f"{prefix}_{n}", target, fn) for n, fn in both.items()]
    specs += [
        PerturbationSpec("query_duplicate_terms", "query", duplicate_terms),
        PerturbationSpec("doc_shuffle_sentences", "document", shuffle_sentences),
        PerturbationSpec("doc_append_irrelevant", "document", append_irrelevant, needs_pool=True),
    ]
    return types.MappingProxyType({s.name: s for s in specs})


PERTURBATIONS: Mapping[str, PerturbationSpec] = _registry()


@functools.cache
def builtin_synonyms() -> Mapping[str, tuple[str, ...]]:
    """The shipped biomedical/general synonym map (~60 lowercase words; read-only).

    >>> builtin_synonyms()["cancer"]
    ('tumor', 'malignancy', 'neoplasm')
    """
    ref = resources.files("crossrank.evaluation").joinpath("resources/synonyms.json")
    table = json.loads(ref.read_text(encoding="utf-8"))["synonyms"]
    return types.MappingProxyType({word: tuple(alts) for word, alts in table.items()})


def _pick(
    rng: np.random.Generator, n: int, strength: float, *, minimum: int = 1, limit: int | None = None
) -> list[int]:
    """``ceil(strength * n)`` distinct indices in [0, n) (clamped to [minimum, limit])."""
    if n == 0:
        return []
    count = min(max(math.ceil(strength * n), minimum), n if limit is None else limit)
    return rng.choice(n, size=count, replace=False).tolist()


def _typo(word: str, draws: Sequence[float]) -> str:
    """One typo in ``word``; ``draws`` are three uniforms in [0, 1) picking op, spot, key."""
    u_op, u_at, u_key = draws
    letters = [k for k, c in enumerate(word) if c.isalpha()][1:]
    keyed = [k for k in letters if word[k].lower() in _NEIGHBOURS]
    swappable = [k for k in letters if k + 1 in letters and word[k] != word[k + 1]]
    op = _choose(("swap", "drop", "insert", "substitute"), u_op)
    if (op == "swap" and not swappable) or (op in ("insert", "substitute") and not keyed):
        op = "drop"  # always possible: the word has >= 3 letters after the first
    if op == "swap":
        k = _choose(swappable, u_at)
        return word[:k] + word[k + 1] + word[k] + word[k + 2 :]
    if op == "drop":
        k = _choose(letters, u_at)
        return word[:k] + word[k + 1 :]
    k = _choose(keyed, u_at)
    key = _choose(_NEIGHBOURS[word[k].lower()], u_key)
    key = key.upper() if word[k].isupper() else key
    return word[: k + 1] + key + word[k + 1 :] if op == "insert" else word[:k] + key + word[k + 1 :]


def _choose(options: Sequence[_T], u: float) -> _T:
    """The option a uniform draw ``u`` in [0, 1) falls on."""
    return options[min(int(u * len(options)), len(options) - 1)]


def _long_enough(word: str) -> bool:
    """Whether ``word`` has at least _MIN_TYPO_LETTERS letters (cheap length check first)."""
    return len(word) >= _MIN_TYPO_LETTERS and sum(map(str.isalpha, word)) >= _MIN_TYPO_LETTERS


def _split_word(word: str) -> tuple[str, str, str]:
    match = _CORE.match(word)
    return (match.group(1), match.group(2), match.group(3)) if match else ("", word, "")


def _synonym_options(table: SynonymMap, key: str) -> Sequence[str]:
    options = table[key]
    if isinstance(options, str) or not options or not all(isinstance(o, str) for o in options):
        raise ConfigError(
            f"synonyms of {key!r} must be a non-empty list of strings, got {options!r}"
        )
    return options


def _match_case(replacement: str, original: str) -> str:
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _case_forms(word: str) -> list[str]:
    return list(dict.fromkeys(f for f in (word.upper(), word.lower(), word.title()) if f != word))


def check_strength(strength: float) -> None:
    """Raise ConfigError unless ``strength`` is in (0, 1]."""
    if isinstance(strength, bool) or not (isinstance(strength, int | float) and 0 < strength <= 1):
        raise ConfigError(f"strength must be in (0, 1], got {strength!r}")
