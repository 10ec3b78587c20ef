"""False-negative guard: drop candidates a teacher or the current model scores too highly.

Unjudged relevant documents are common among hard negatives (RocketQA, Qu et al. 2021);
training on them as negatives teaches the model to push relevant documents down.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from crossrank.data.types import Qrels, Run
from crossrank.errors import ConfigError, DataWarning
from crossrank.protocols import Scorer
from crossrank.training.negatives.mining import relevant_ids, score_run

__all__ = ["GuardResult", "drop_false_negatives", "guard_false_negatives"]


@dataclass(frozen=True, slots=True)
class GuardResult:
    """Output of the false-negative guard.

    ``kept`` holds the surviving candidates with their original scores, ``dropped`` the
    ids removed per query, and ``unguarded`` the queries left as they were because no
    positive had a guard score to compare against.
    """

    kept: Run
    dropped: dict[str, list[str]]
    unguarded: tuple[str, ...]

    @property
    def num_dropped(self) -> int:
        return sum(len(ids) for ids in self.dropped.values())


def drop_false_negatives(
    candidates: Run, guard_scores: Run, qrels: Qrels, *, margin: float = 0.0
) -> GuardResult:
    """Drop candidates the guard scores too close to, or above, the query's positives.

    RocketQA-style denoising with a relative threshold: for query q let ``ref`` be the
    lowest guard score among its judged positives (grade > 0). A non-relevant candidate
    c is dropped when ``guard_scores[q][c] > ref - margin`` with ``margin >= 0``. So
    ``margin = 0`` drops only candidates scored above a known positive, and a larger margin
    also drops those scored within ``margin`` below it. Judged-relevant candidates are
    left untouched (the sampler never returns them). ``guard_scores`` come from a teacher
    or the current model and must cover every candidate.

    >>> cands = {"q": {"a": 3.0, "b": 2.0}}
    >>> guard = {"q": {"p": 1.0, "a": 1.5, "b": 0.2}}
    >>> drop_false_negatives(cands, guard, {"q": {"p": 1}}, margin=0.5).dropped
    {'q': ['a']}
    """
    if isinstance(margin, bool) or not (math.isfinite(margin) and margin >= 0):
        raise ConfigError(f"margin must be a finite number >= 0, got {margin!r}")
    kept: Run = {}
    dropped: dict[str, list[str]] = {}
    unguarded: list[str] = []
    for qid, docs in candidates.items():
        scores = guard_scores.get(qid, {})
        relevant = relevant_ids(qrels, qid)
        positives = [scores[d] for d in relevant if d in scores]
        if not positives:
            kept[qid], dropped[qid] = dict(docs), []
            unguarded.append(qid)
            continue
        ids = [d for d in docs if d not in relevant]
        missing = [d for d in ids if d not in scores]
        if missing:
            raise ConfigError(f"guard scores for query {qid!r} miss candidates {missing[:3]}")
        values = np.array([scores[d] for d in ids], dtype=np.float64)
        drop = values > min(positives) - margin
        dropped[qid] = [d for d, flag in zip(ids, drop.tolist(), strict=True) if flag]
        gone = set(dropped[qid])
        kept[qid] = {d: s for d, s in docs.items() if d not in gone}
    if unguarded:
        warnings.warn(
            f"false-negative guard: {len(unguarded)} query(ies) have no scored positive and "
            f"were kept unfiltered, e.g. {unguarded[:3]}",
            DataWarning,
            stacklevel=2,
        )
    return GuardResult(kept, dropped, tuple(unguarded))


def guard_false_negatives(
    queries: Mapping[str, str],
    candidates: Run,
    qrels: Qrels,
    doc_texts: Mapping[str, str],
    scorer: Scorer,
    *,
    margin: float = 0.0,
    batch_size: int = 256,
) -> GuardResult:
    """Score candidates and positives with ``scorer`` (teacher or current model), then guard.

    See :func:`drop_false_negatives` for the rule; only positives with a text are scored.
    """
    pool: Run = {}
    for qid, docs in candidates.items():
        positives = {d: 0.0 for d in relevant_ids(qrels, qid) if d in doc_texts}
        pool[qid] = {**dict.fromkeys(docs, 0.0), **positives}
    scores = score_run(queries, pool, doc_texts, scorer, batch_size=batch_size)
    return drop_false_negatives(candidates, scores, qrels, margin=margin)
