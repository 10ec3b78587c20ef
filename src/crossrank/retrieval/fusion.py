"""Rank fusion of several runs: reciprocal rank fusion and score interpolation.

All functions are pure: they read runs and return a new run, best first per query, with
ties broken by doc id so results are deterministic.

Example:
    >>> bm25 = {"q": {"a": 12.0, "b": 9.0}}
    >>> dense = {"q": {"b": 0.8, "c": 0.7}}
    >>> list(reciprocal_rank_fusion([bm25, dense])["q"])
    ['b', 'a', 'c']
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from crossrank.data.types import Run
from crossrank.errors import ConfigError, require_positive
from crossrank.protocols import Retriever

Normalization = Literal["zscore", "minmax", "none"]
NORMALIZATIONS = ("zscore", "minmax", "none")
FUSION_METHODS = ("rrf", "interpolate")


def reciprocal_rank_fusion(
    runs: Sequence[Run],
    k: int = 60,
    weights: Sequence[float] | None = None,
    top_k: int | None = None,
) -> Run:
    """RRF (Cormack et al., 2009): ``score(d) = sum_r w_r / (k + rank_r(d))``, ranks from 1.

    Ranks come from sorting each run by score (desc), ties by doc id. A doc absent from a run
    gets nothing from it. ``weights`` default to 1 per run; ``top_k`` truncates the output.

    >>> run = reciprocal_rank_fusion([{"q": {"a": 3.0, "b": 2.0}}, {"q": {"b": 5.0}}], k=1)
    >>> {d: round(s, 4) for d, s in run["q"].items()}
    {'b': 0.8333, 'a': 0.5}
    """
    _check_runs(runs, top_k)
    weights = _check_weights(weights if weights is not None else [1.0] * len(runs), len(runs))
    _check_rrf_k(k)
    fused: Run = {}
    for qid in _query_ids(runs):
        scores: dict[str, float] = defaultdict(float)
        for weight, run in zip(weights, runs, strict=True):
            for rank, doc_id in enumerate(_ranked_doc_ids(run.get(qid, {})), start=1):
                scores[doc_id] += weight / (k + rank)
        fused[qid] = _sorted_ranking(scores, top_k)
    return fused


def interpolate(
    runs: Sequence[Run],
    weights: Sequence[float],
    normalization: Normalization = "zscore",
    top_k: int | None = None,
) -> Run:
    """Weighted sum of per-query normalised scores: ``sum_r w_r * norm_r(d)``.

    ``zscore`` subtracts the query's mean and divides by its (population) standard deviation;
    ``minmax`` maps the query's scores to [0, 1]; ``none`` uses raw scores. A query whose
    scores in a run are all equal normalises to 0 (no division by zero). A doc missing from
    a run gets that run's per-query *minimum* normalised score, i.e. it is treated as at
    least as bad as the worst doc the run returned; a run without the query adds 0.

    >>> run = interpolate([{"q": {"a": 1.0, "b": 3.0}}, {"q": {"a": 10.0}}], [0.5, 0.5], "minmax")
    >>> run["q"]
    {'b': 0.5, 'a': 0.0}
    """
    _check_runs(runs, top_k)
    weights = _check_weights(weights, len(runs))
    if normalization not in NORMALIZATIONS:
        raise ConfigError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    fused: Run = {}
    for qid in _query_ids(runs):
        doc_ids = list(dict.fromkeys(d for run in runs for d in run.get(qid, {})))
        position = {doc_id: i for i, doc_id in enumerate(doc_ids)}
        total = np.zeros(len(doc_ids), dtype=np.float64)
        for weight, run in zip(weights, runs, strict=True):
            ranking = run.get(qid)
            if not ranking:
                continue
            values = _normalize(
                np.fromiter(ranking.values(), np.float64, len(ranking)), normalization
            )
            column = np.full(len(doc_ids), values.min())
            column[[position[d] for d in ranking]] = values
            total += weight * column
        fused[qid] = _sorted_ranking(dict(zip(doc_ids, total.tolist(), strict=True)), top_k)
    return fused


class HybridRetriever:
    """Fuses several retrievers' runs; implements ``crossrank.protocols.Retriever``.

    Each retriever returns ``depth`` candidates (default: ``top_k``, at least ``top_k``), which
    are fused with RRF or interpolation and cut to ``top_k``. ``weights`` default to 1 per
    retriever for RRF and to equal shares summing to 1 for interpolation.

    >>> class Fixed:
    ...     def __init__(self, run): self.run = run
    ...     def retrieve(self, queries, top_k): return self.run
    >>> hybrid = HybridRetriever([Fixed({"q": {"a": 1.0}}), Fixed({"q": {"b": 1.0, "a": 0.5}})])
    >>> list(hybrid.retrieve({"q": "text"}, top_k=2)["q"])
    ['a', 'b']
    """

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        method: Literal["rrf", "interpolate"] = "rrf",
        *,
        weights: Sequence[float] | None = None,
        rrf_k: int = 60,
        normalization: Normalization = "zscore",
        depth: int | None = None,
    ) -> None:
        if not retrievers:
            raise ConfigError("HybridRetriever needs at least one retriever")
        if method not in FUSION_METHODS:
            raise ConfigError(f"method must be one of {FUSION_METHODS}, got {method!r}")
        if normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        _check_rrf_k(rrf_k)
        if depth is not None:
            require_positive("depth", depth)
        if weights is None:
            weights = [1.0 if method == "rrf" else 1.0 / len(retrievers)] * len(retrievers)
        self.retrievers = tuple(retrievers)
        self.method = method
        self.weights = _check_weights(weights, len(self.retrievers))
        self.rrf_k = rrf_k
        self.normalization = normalization
        self.depth = depth

    def retrieve(self, queries: Mapping[str, str], top_k: int) -> Run:
        """Fused top ``top_k`` per query; every input query appears (possibly with ``{}``)."""
        require_positive("top_k", top_k)
        depth = max(self.depth or top_k, top_k)
        runs = [retriever.retrieve(queries, depth) for retriever in self.retrievers]
        if self.method == "rrf":
            fused = reciprocal_rank_fusion(runs, self.rrf_k, self.weights, top_k)
        else:
            fused = interpolate(runs, self.weights, self.normalization, top_k)
        return {qid: fused.get(qid, {}) for qid in queries}


def _check_runs(runs: Sequence[Run], top_k: int | None) -> None:
    if not runs:
        raise ConfigError("at least one run is required")
    if top_k is not None:
        require_positive("top_k", top_k)


def _check_weights(weights: Sequence[float] | None, n_runs: int) -> tuple[float, ...]:
    if weights is None or len(weights) != n_runs:
        raise ConfigError(f"need one weight per run ({n_runs}), got {weights!r}")
    for weight in weights:
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
        ):
            raise ConfigError(f"weights must be finite numbers, got {weight!r}")
    return tuple(float(w) for w in weights)


def _check_rrf_k(k: float) -> None:
    if isinstance(k, bool) or not isinstance(k, int | float) or not k >= 0:
        raise ConfigError(f"RRF k must be a number >= 0, got {k!r}")


def _query_ids(runs: Sequence[Run]) -> list[str]:
    """Union of query ids in first-seen order."""
    return list(dict.fromkeys(qid for run in runs for qid in run))


def _ranked_doc_ids(ranking: Mapping[str, float]) -> list[str]:
    return sorted(ranking, key=lambda d: (-ranking[d], d))


def _normalize(values: np.ndarray, normalization: Normalization) -> np.ndarray:
    if not np.isfinite(values).all():
        raise ConfigError("run scores must be finite to interpolate them")
    if normalization == "none":
        return values
    if normalization == "zscore":
        spread = values.std()
        return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)
    spread = values.max() - values.min()
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


def _sorted_ranking(scores: Mapping[str, float], top_k: int | None) -> dict[str, float]:
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return dict(ordered[:top_k] if top_k is not None else ordered)
