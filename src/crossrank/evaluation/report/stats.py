"""Accuracy tables of the report: means, bootstrap intervals and paired tests vs a baseline."""

from __future__ import annotations

from collections.abc import Mapping

from crossrank.errors import ConfigError
from crossrank.evaluation.confidence import bootstrap_ci
from crossrank.evaluation.report.model import AccuracyRow, AccuracyTable, StatsSettings
from crossrank.evaluation.significance import compare

__all__ = ["accuracy_table"]


def accuracy_table(
    per_query: Mapping[str, Mapping[str, float]],
    baseline: str,
    metric: str,
    stats: StatsSettings,
) -> AccuracyTable:
    """One row per system (mapping order): mean, bootstrap CI, Holm-adjusted p vs ``baseline``.

    Every system must cover the same queries (at least 2). The Holm family is the table:
    the systems compared with the baseline on this metric.

    >>> table = accuracy_table({"bm25": {"q1": 0.2, "q2": 0.4}, "ce": {"q1": 0.6, "q2": 0.9}},
    ...                        "bm25", "nDCG@10", StatsSettings(n_samples=200))
    >>> [(r.system, round(r.mean, 2), r.p_adjusted is None) for r in table.rows]
    [('bm25', 0.3, True), ('ce', 0.75, False)]
    """
    if baseline not in per_query:
        raise ConfigError(f"baseline {baseline!r} is not among the systems {sorted(per_query)}")
    tests = {}
    if len(per_query) > 1:
        results = compare(per_query, baseline, metric=metric, test=stats.test,
                          n_samples=stats.n_samples, seed=stats.seed)  # fmt: skip
        tests = {r.system: r for r in results}
    rows = []
    for system, values in per_query.items():
        ci = bootstrap_ci(values, stats.n_samples, stats.confidence, stats.seed)
        test = tests.get(system)
        rows.append(
            AccuracyRow(
                system=system,
                mean=ci.mean,
                ci_low=ci.low,
                ci_high=ci.high,
                p_value=None if test is None else test.p_value,
                p_adjusted=None if test is None else test.p_adjusted,
            )
        )
    return AccuracyTable(metric, baseline, len(per_query[baseline]), tuple(rows))
