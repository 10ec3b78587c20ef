"""Mix negatives from several sources into fixed-size, duplicate-free lists per query.

Sources: ``bm25`` and ``dense`` (hard negatives from first-stage runs), ``model``
(model-mined, see :mod:`crossrank.training.negatives.mining`) and ``random`` (uniform over
the corpus ids). A judged-relevant document (grade > 0) is never returned.

Example:
    >>> qrels = {"q1": {"d1": 1}}
    >>> bm25 = {"q1": {"d1": 9.0, "d2": 5.0, "d3": 4.0}}
    >>> mix = NegativeMix(bm25=0.5, random=0.5)
    >>> sample = sample_negatives(qrels, 2, mix, runs={"bm25": bm25}, corpus_ids=["d4", "d5"])
    >>> sample.origins["q1"]
    ['bm25', 'random']
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from crossrank.data.types import Qrels, Run
from crossrank.errors import ConfigError, DataWarning, require_positive
from crossrank.training.negatives.mining import relevant_ids

__all__ = ["SOURCES", "NegativeMix", "NegativeSample", "sample_negatives"]

SOURCES: tuple[str, ...] = ("bm25", "dense", "model", "random")


@dataclass(frozen=True, slots=True)
class NegativeMix:
    """Share of each negative source; weights are validated and normalised to sum to 1.

    Every weight defaults to 0, so name at least one. Sources are filled in the order
    bm25, dense, model, random; a source that runs short for a query hands its deficit to
    the next one, wrapping around to the earlier ones (a supplied source with weight 0
    serves only as such a fallback).

    >>> NegativeMix(bm25=2, dense=1, model=1).quotas(7)
    {'bm25': 3, 'dense': 2, 'model': 2, 'random': 0}
    """

    bm25: float = 0.0
    dense: float = 0.0
    model: float = 0.0
    random: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and value >= 0):
                raise ConfigError(
                    f"NegativeMix.{f.name} must be a finite number >= 0, got {value!r}"
                )
        total = sum(getattr(self, name) for name in SOURCES)
        if total <= 0:
            raise ConfigError("NegativeMix needs at least one weight > 0")
        for name in SOURCES:
            object.__setattr__(self, name, getattr(self, name) / total)

    def weights(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SOURCES}

    def quotas(self, n: int) -> dict[str, int]:
        """Split n negatives by weight (largest remainder; ties go to the earlier source)."""
        exact = [getattr(self, name) * n for name in SOURCES]
        counts = [math.floor(x) for x in exact]
        by_remainder = sorted(range(len(SOURCES)), key=lambda i: (counts[i] - exact[i], i))
        for i in by_remainder[: n - sum(counts)]:
            counts[i] += 1
        return dict(zip(SOURCES, counts, strict=True))


@dataclass(frozen=True, slots=True)
class NegativeSample:
    """Negatives per query, the source of each, and what had to be borrowed or was missing.

    ``borrowed[source]`` counts negatives a source supplied beyond its quota because an
    earlier source ran short; ``short[qid]`` counts negatives missing for queries that got
    fewer than requested because every source was exhausted.
    """

    negatives: dict[str, list[str]]
    origins: dict[str, list[str]]
    borrowed: dict[str, int]
    short: dict[str, int]


def sample_negatives(
    qrels: Qrels,
    n: int,
    mix: NegativeMix,
    *,
    runs: Mapping[str, Run] | None = None,
    corpus_ids: Sequence[str] = (),
    depth: int = 100,
    seed: int = 0,
) -> NegativeSample:
    """Draw ``n`` negatives for every query of ``qrels`` following ``mix``.

    ``runs`` maps a source name (bm25, dense, model) to its candidate run; each source
    draws uniformly from the top ``depth`` candidates of its run for the query. ``random``
    draws from ``corpus_ids``. Every query gets its own generator seeded from ``seed`` and
    its id, so a query's negatives do not depend on which other queries are sampled.
    Warns (DataWarning) when a source had to borrow or a query came up short.
    """
    require_positive("n", n)
    require_positive("depth", depth)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    available = _available_sources(mix, runs or {}, corpus_ids)
    quotas = mix.quotas(n)
    negatives: dict[str, list[str]] = {}
    origins: dict[str, list[str]] = {}
    borrowed = dict.fromkeys(SOURCES, 0)
    short: dict[str, int] = {}
    for qid in qrels:
        rng = np.random.default_rng([seed, zlib.crc32(qid.encode("utf-8"))])
        pools = {s: _pool((runs or {})[s].get(qid, {}), depth) for s in available if s != "random"}
        picks = _fill_query(
            n,
            quotas=quotas,
            available=available,
            pools=pools,
            corpus_ids=corpus_ids,
            relevant=relevant_ids(qrels, qid),
            rng=rng,
        )
        negatives[qid] = [doc_id for doc_id, _ in picks]
        origins[qid] = [source for _, source in picks]
        for source in available:
            borrowed[source] += max(0, origins[qid].count(source) - quotas[source])
        if len(picks) < n:
            short[qid] = n - len(picks)
    _warn_shortfalls(borrowed, short, n)
    return NegativeSample(negatives, origins, borrowed, short)


def _available_sources(
    mix: NegativeMix, runs: Mapping[str, Run], corpus_ids: Sequence[str]
) -> tuple[str, ...]:
    unknown = sorted(set(runs) - set(SOURCES[:-1]))
    if unknown:
        raise ConfigError(f"runs has unknown sources {unknown}; expected some of {SOURCES[:-1]}")
    if isinstance(corpus_ids, str):
        raise ConfigError("corpus_ids must be a sequence of document ids, not a string")
    supplied = {*runs, *(["random"] if len(corpus_ids) else [])}
    for source, weight in mix.weights().items():
        if weight > 0 and source not in supplied:
            what = "corpus_ids" if source == "random" else f"runs[{source!r}]"
            raise ConfigError(f"NegativeMix gives {source!r} weight {weight:.3g} but no {what}")
    return tuple(s for s in SOURCES if s in supplied)


def _pool(candidates: Mapping[str, float], depth: int) -> list[str]:
    """Top-``depth`` candidate ids by score (ties by id, so the pool is deterministic)."""
    ranked = sorted(candidates.items(), key=lambda item: (-item[1], item[0]))
    return [doc_id for doc_id, _ in ranked[:depth]]


def _fill_query(
    n: int,
    *,
    quotas: Mapping[str, int],
    available: Sequence[str],
    pools: Mapping[str, list[str]],
    corpus_ids: Sequence[str],
    relevant: set[str],
    rng: np.random.Generator,
) -> list[tuple[str, str]]:
    """``(doc_id, source)`` picks: quotas first, then deficits passed down the source order."""
    picks: list[tuple[str, str]] = []
    taken = set(relevant)
    carry = 0
    for rounds in range(2):
        for source in available:
            need = quotas[source] + carry if rounds == 0 else carry
            if need <= 0:
                continue
            if source == "random":
                got = _draw_random(corpus_ids, need, taken, rng)
            else:
                got = _draw_pool(pools[source], need, taken, rng)
            taken.update(got)
            picks.extend((doc_id, source) for doc_id in got)
            carry = need - len(got)
        if len(picks) >= n:
            break
    return picks


def _draw_pool(pool: list[str], need: int, taken: set[str], rng: np.random.Generator) -> list[str]:
    free = [doc_id for doc_id in pool if doc_id not in taken]
    chosen = rng.choice(len(free), size=min(need, len(free)), replace=False)
    return [free[i] for i in chosen.tolist()]


def _draw_random(
    corpus_ids: Sequence[str], need: int, taken: set[str], rng: np.random.Generator
) -> list[str]:
    # need + |taken| distinct positions always leave `need` untaken ids when ids are unique,
    # and numpy draws them in O(size) even from a million ids (no full permutation).
    size = min(len(corpus_ids), need + len(taken))
    got: list[str] = []
    seen: set[str] = set()
    for i in rng.choice(len(corpus_ids), size=size, replace=False).tolist():
        doc_id = corpus_ids[i]
        if doc_id not in taken and doc_id not in seen:
            seen.add(doc_id)
            got.append(doc_id)
            if len(got) == need:
                break
    return got


def _warn_shortfalls(borrowed: Mapping[str, int], short: Mapping[str, int], n: int) -> None:
    if any(borrowed.values()):
        counts = {s: c for s, c in borrowed.items() if c}
        warnings.warn(
            f"negative sampling: sources ran short and later sources filled in {counts}",
            DataWarning,
            stacklevel=3,
        )
    if short:
        warnings.warn(
            f"negative sampling: {len(short)} query(ies) got fewer than {n} negatives "
            f"({sum(short.values())} missing in all, e.g. {list(short)[:3]}); every source "
            "was exhausted",
            DataWarning,
            stacklevel=3,
        )
