"""Percentile bootstrap confidence intervals of metric means over queries.

Queries are the sampling unit: each bootstrap sample draws as many query ids as were
evaluated, with replacement, and takes the mean of their per-query values. The interval
is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of those means.
Each metric uses a fresh generator seeded with ``seed``, so every metric of a system is
resampled with the same query draws and the interval of one metric does not depend on
which others were requested.

Example:
    >>> ci = bootstrap_ci({"q1": 0.2, "q2": 0.4, "q3": 0.9}, n_samples=2000)
    >>> ci.low <= ci.mean <= ci.high
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from crossrank.errors import ConfigError, require_positive
from crossrank.evaluation.metrics import EvalResult

__all__ = ["ConfidenceInterval", "bootstrap_ci", "confidence_intervals"]

# Caps one (samples, queries) index matrix at 4M entries (32 MB as int64) whatever n_samples.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True, slots=True)
class ConfidenceInterval:
    """A metric mean over queries and its bootstrap interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    confidence: float
    n_queries: int

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low


def bootstrap_ci(
    per_query: Mapping[str, float],
    n_samples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of the mean of per-query values.

    >>> bootstrap_ci({"q1": 0.5, "q2": 0.5}, n_samples=100)
    ConfidenceInterval(mean=0.5, low=0.5, high=0.5, confidence=0.95, n_queries=2)
    """
    values = _values(per_query)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int):
        raise ConfigError(f"n_samples must be an int, got {n_samples!r}")
    require_positive("n_samples", n_samples)
    if isinstance(confidence, bool) or not (
        isinstance(confidence, int | float) and 0.0 < confidence < 1.0
    ):
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_samples, dtype=np.float64)
    for start, rows in _chunks(n_samples, values.size):
        draws = rng.integers(0, values.size, size=(rows, values.size))
        means[start : start + rows] = values[draws].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return ConfidenceInterval(
        mean=math.fsum(values.tolist()) / values.size,
        low=float(low),
        high=float(high),
        confidence=float(confidence),
        n_queries=int(values.size),
    )


def confidence_intervals(
    result: EvalResult,
    n_samples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, ConfidenceInterval]:
    """:func:`bootstrap_ci` of every metric of an evaluation, in metric order.

    >>> r = EvalResult(means={"RR": 0.5}, per_query={"RR": {"q1": 0.0, "q2": 1.0}})
    >>> ci = confidence_intervals(r, n_samples=1000)["RR"]
    >>> (ci.mean, ci.low, ci.high)
    (0.5, 0.0, 1.0)
    """
    return {
        metric: bootstrap_ci(values, n_samples, confidence, seed)
        for metric, values in result.per_query.items()
    }


def _values(per_query: Mapping[str, float]) -> np.ndarray:
    if not isinstance(per_query, Mapping):
        raise ConfigError(f"per_query must map query id -> value, got {type(per_query).__name__}")
    if len(per_query) < 2:
        raise ConfigError(f"a bootstrap interval needs at least 2 queries, got {len(per_query)}")
    try:
        values = np.fromiter(per_query.values(), dtype=np.float64, count=len(per_query))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"per-query values must be real numbers ({err})") from err
    if not np.isfinite(values).all():
        bad = list(per_query)[int(np.argmin(np.isfinite(values)))]
        raise ConfigError(f"per-query value of {bad!r} is not finite: {per_query[bad]!r}")
    return values


def _chunks(n_samples: int, n_queries: int) -> Iterator[tuple[int, int]]:
    """(start, rows) of successive sample chunks, each <= _CHUNK_ELEMENTS draws."""
    per_chunk = max(1, _CHUNK_ELEMENTS // n_queries)
    for start in range(0, n_samples, per_chunk):
        yield start, min(per_chunk, n_samples - start)
