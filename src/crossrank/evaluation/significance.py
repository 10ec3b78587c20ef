"""Paired significance tests of several systems against one baseline.

Every test is two-sided and paired by query id: it looks at the per-query differences
``system - baseline`` of one metric. Three tests are available:

* ``"t"``: Student's paired t-test (``scipy.stats.ttest_rel``).
* ``"randomization"``: paired randomisation (sign-flip permutation) test on the mean
  difference, with ``n_samples`` random sign vectors.
* ``"bootstrap"``: paired bootstrap test (Efron & Tibshirani): the differences are
  centred to obey the null hypothesis and resampled with replacement ``n_samples`` times.

Monte Carlo p-values are ``(hits + 1) / (n_samples + 1)``, so they are never 0 and equal
1.0 for identical systems. Each comparison draws from a fresh generator seeded with
``seed``, so a system's p-value does not depend on which other systems are compared.
The p-values of the systems compared against the baseline on one metric form one family
and are Holm-Bonferroni adjusted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from crossrank.errors import ConfigError, require_positive
from crossrank.evaluation.metrics import EvalResult

__all__ = [
    "TESTS",
    "SignificanceResult",
    "TestName",
    "bootstrap_test",
    "compare",
    "compare_results",
    "holm",
    "paired_t_test",
    "randomization_test",
]

TestName = Literal["t", "randomization", "bootstrap"]
TESTS: tuple[str, ...] = ("t", "randomization", "bootstrap")
# Caps one (samples, queries) matrix at 4M entries (32 MB as float64) whatever n_samples.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True, slots=True)
class SignificanceResult:
    """One system compared with the baseline on one metric.

    ``mean_diff`` is mean(system - baseline); ``p_adjusted`` is Holm-adjusted over the
    systems compared with the same baseline on the same metric.
    """

    metric: str
    system: str
    baseline: str
    mean_diff: float
    p_value: float
    p_adjusted: float
    test: str
    num_queries: int

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the Holm-adjusted p-value is below ``alpha``."""
        return self.p_adjusted < alpha


def paired_t_test(diffs: Sequence[float] | np.ndarray) -> float:
    """Two-sided paired t-test p-value of per-query differences.

    Zero-variance differences give 1.0 when they are all 0 and 0.0 otherwise (the limit
    of the t statistic), where scipy would return nan or warn.

    >>> paired_t_test([0.0, 0.0, 0.0])
    1.0
    """
    d = _as_diffs(diffs)
    if np.ptp(d) == 0.0:
        return 1.0 if d[0] == 0.0 else 0.0
    return float(stats.ttest_rel(d, np.zeros_like(d)).pvalue)


def randomization_test(
    diffs: Sequence[float] | np.ndarray, n_samples: int = 10_000, seed: int = 0
) -> float:
    """Two-sided paired randomisation (sign-flip) test p-value of the mean difference.

    >>> randomization_test([0.0, 0.0, 0.0], n_samples=100)
    1.0
    """
    d = _as_diffs(diffs)
    _check_samples(n_samples)
    observed = abs(float(d.mean()))
    rng = np.random.default_rng(seed)
    hits = 0
    for rows in _chunk_rows(n_samples, d.size):
        # Under H0 each difference is as likely to have either sign.
        signs = rng.integers(0, 2, size=(rows, d.size), dtype=np.int8) * 2 - 1
        hits += _count_extreme(np.abs(signs @ d) / d.size, observed)
    return (hits + 1) / (n_samples + 1)


def bootstrap_test(
    diffs: Sequence[float] | np.ndarray, n_samples: int = 10_000, seed: int = 0
) -> float:
    """Two-sided paired bootstrap test p-value of the mean difference.

    >>> bootstrap_test([0.1, 0.1, 0.1], n_samples=100) < 0.05
    True
    """
    d = _as_diffs(diffs)
    _check_samples(n_samples)
    observed = abs(float(d.mean()))
    centred = d - d.mean()  # shift the sample so that H0 (mean difference 0) holds
    rng = np.random.default_rng(seed)
    hits = 0
    for rows in _chunk_rows(n_samples, d.size):
        resampled = centred[rng.integers(0, d.size, size=(rows, d.size))]
        hits += _count_extreme(np.abs(resampled.mean(axis=1)), observed)
    return (hits + 1) / (n_samples + 1)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    >>> [round(p, 10) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ConfigError(f"p-values must be a flat sequence in [0, 1], got {p_values!r}")
    m = p.size
    order = np.argsort(p, kind="stable")
    # The i-th smallest p is scaled by (m - i); the running max keeps the order monotone.
    scaled = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted.tolist()


def compare(
    per_query_by_system: Mapping[str, Mapping[str, float]],
    baseline: str,
    *,
    metric: str,
    test: TestName = "t",
    n_samples: int = 10_000,
    seed: int = 0,
) -> list[SignificanceResult]:
    """Test every other system against ``baseline`` on one metric, Holm-adjusted.

    ``per_query_by_system`` maps system -> query id -> value; all systems must hold the
    same query ids. Returns one result per non-baseline system, in mapping order.

    >>> scores = {"bm25": {"q1": 0.1, "q2": 0.2}, "ce": {"q1": 0.5, "q2": 0.7}}
    >>> [(r.system, round(r.mean_diff, 2)) for r in compare(scores, "bm25", metric="RR")]
    [('ce', 0.45)]
    """
    if test not in TESTS:
        raise ConfigError(f"unknown significance test {test!r}; choose one of {TESTS}")
    _check_samples(n_samples)
    if baseline not in per_query_by_system:
        raise ConfigError(
            f"baseline {baseline!r} is not among the systems {sorted(per_query_by_system)}"
        )
    qids = list(per_query_by_system[baseline])
    if len(qids) < 2:
        raise ConfigError(f"significance tests need at least 2 queries, got {len(qids)}")
    base = _aligned(per_query_by_system[baseline], qids, baseline, baseline)
    rows: list[tuple[str, float, float]] = []
    for system, values in per_query_by_system.items():
        if system == baseline:
            continue
        diffs = _aligned(values, qids, system, baseline) - base
        rows.append((system, float(diffs.mean()), _p_value(test, diffs, n_samples, seed)))
    adjusted = holm([p for _, _, p in rows])
    return [
        SignificanceResult(metric, system, baseline, diff, p, p_adj, test, len(qids))
        for (system, diff, p), p_adj in zip(rows, adjusted, strict=True)
    ]


def compare_results(
    results: Mapping[str, EvalResult],
    baseline: str,
    metrics: Sequence[str] | None = None,
    *,
    test: TestName = "t",
    n_samples: int = 10_000,
    seed: int = 0,
) -> list[SignificanceResult]:
    """:func:`compare` on every metric (default: the baseline's) of evaluated systems."""
    if baseline not in results:
        raise ConfigError(f"baseline {baseline!r} is not among the systems {sorted(results)}")
    chosen = results[baseline].metrics if metrics is None else tuple(metrics)
    out: list[SignificanceResult] = []
    for metric in chosen:
        for system, result in results.items():
            if metric not in result.per_query:
                raise ConfigError(f"system {system!r} has no values for metric {metric!r}")
        per_query = {system: result.per_query[metric] for system, result in results.items()}
        out += compare(
            per_query, baseline, metric=metric, test=test, n_samples=n_samples, seed=seed
        )
    return out


def _p_value(test: str, diffs: np.ndarray, n_samples: int, seed: int) -> float:
    if test == "t":
        return paired_t_test(diffs)
    if test == "randomization":
        return randomization_test(diffs, n_samples, seed)
    return bootstrap_test(diffs, n_samples, seed)


def _aligned(
    values: Mapping[str, float], qids: Sequence[str], system: str, baseline: str
) -> np.ndarray:
    """Values of ``system`` in ``qids`` order; ConfigError naming a mismatched query id."""
    expected = set(qids)
    if values.keys() != expected:
        missing = next((qid for qid in qids if qid not in values), None)
        if missing is not None:
            raise ConfigError(
                f"system {system!r} has no value for query {missing!r} "
                f"that baseline {baseline!r} has"
            )
        extra = next(qid for qid in values if qid not in expected)
        raise ConfigError(f"system {system!r} has query {extra!r} that baseline {baseline!r} lacks")
    array = np.fromiter((values[qid] for qid in qids), dtype=np.float64, count=len(qids))
    if not np.isfinite(array).all():
        bad = qids[int(np.argmin(np.isfinite(array)))]
        raise ConfigError(f"system {system!r} has a non-finite value for query {bad!r}")
    return array


def _as_diffs(diffs: Sequence[float] | np.ndarray) -> np.ndarray:
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1 or d.size < 2:
        raise ConfigError(f"need a flat sequence of at least 2 differences, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ConfigError("per-query differences must be finite")
    return d


def _check_samples(n_samples: int) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int):
        raise ConfigError(f"n_samples must be an int, got {n_samples!r}")
    require_positive("n_samples", n_samples)


def _chunk_rows(n_samples: int, n_queries: int) -> Iterator[int]:
    """Row counts of successive sample chunks, each <= _CHUNK_ELEMENTS entries."""
    per_chunk = max(1, _CHUNK_ELEMENTS // n_queries)
    for start in range(0, n_samples, per_chunk):
        yield min(per_chunk, n_samples - start)


def _count_extreme(samples: np.ndarray, observed: float) -> int:
    # The tolerance keeps sign flips that reproduce |mean| exactly from being lost to
    # rounding (e.g. identical systems, or differences that are all equal in size).
    return int(np.count_nonzero(samples >= observed - 1e-12 * max(1.0, observed)))
