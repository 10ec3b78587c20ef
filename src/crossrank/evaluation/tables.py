"""Printed result tables and JSON output of evaluations.

``to_json`` gives the flat ``{metric: mean}`` mapping of one system that
``crossrank evaluate --json OUT`` writes; ``report_json`` gives a richer, versioned
report (per-query values, significance) for several systems.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from crossrank.data.atomic import atomic_write
from crossrank.errors import ConfigError
from crossrank.evaluation.metrics import EvalResult
from crossrank.evaluation.significance import SignificanceResult

__all__ = [
    "MARKER",
    "REPORT_SCHEMA_VERSION",
    "format_table",
    "report_json",
    "to_json",
    "write_json",
]

MARKER = "†"
REPORT_SCHEMA_VERSION = 1
_TEST_NAMES = {
    "t": "paired t-test",
    "randomization": "paired randomisation test",
    "bootstrap": "paired bootstrap test",
}


def format_table(
    results: Mapping[str, EvalResult],
    metrics: Sequence[str] | None = None,
    baseline: str | None = None,
    significance: Sequence[SignificanceResult] = (),
    alpha: float = 0.05,
) -> str:
    """Aligned text table: one row per system, one column per metric mean.

    A mean is followed by ``†`` when the system differs significantly from ``baseline``
    (Holm-adjusted p < ``alpha``); a legend explains the marker.

    >>> r = EvalResult(means={"RR": 0.5}, per_query={"RR": {"q1": 0.5}})
    >>> print(format_table({"bm25": r}))
    system      RR
    bm25    0.5000
    """
    columns = _check_metrics(results, metrics)
    flagged = _significant_cells(results, baseline, significance, alpha)
    # Means carry a one-character marker slot; the same slot after each metric name keeps
    # the right-aligned header above the digits.
    header = ["system", *(f"{m} " for m in columns)]
    rows = [
        [system, *(_cell(result.means[m], (system, m) in flagged) for m in columns)]
        for system, result in results.items()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines += _legend(baseline, significance, alpha)
    return "\n".join(lines)


def to_json(result: EvalResult) -> dict[str, float]:
    """The CLI's JSON: each metric name mapped to its mean.

    >>> to_json(EvalResult(means={"nDCG@10": 0.7}, per_query={"nDCG@10": {"q1": 0.7}}))
    {'nDCG@10': 0.7}
    """
    return dict(result.means)


def report_json(
    results: Mapping[str, EvalResult],
    baseline: str | None = None,
    significance: Sequence[SignificanceResult] = (),
    include_per_query: bool = True,
) -> dict[str, object]:
    """Versioned report of several systems: means, per-query values and significance."""
    if baseline is not None and baseline not in results:
        raise ConfigError(f"baseline {baseline!r} is not among the systems {sorted(results)}")
    systems: dict[str, object] = {}
    for name, result in results.items():
        entry: dict[str, object] = {
            "means": dict(result.means),
            "num_queries": len(result.query_ids),
            "num_ignored_run_queries": result.num_ignored_run_queries,
        }
        if include_per_query:
            entry["per_query"] = {m: dict(v) for m, v in result.per_query.items()}
        systems[name] = entry
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "baseline": baseline,
        "systems": systems,
        "significance": [dataclasses.asdict(s) for s in significance],
    }


def write_json(path: str | Path, obj: Mapping[str, object]) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temp file in the same folder + rename).

    Parent folders are created. Non-finite floats are rejected, as JSON has no NaN.
    """
    target = Path(path)
    try:
        text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except (TypeError, ValueError) as err:
        raise ConfigError(f"cannot write {target}: value is not valid JSON ({err})") from err
    with atomic_write(target) as handle:
        handle.write(text)


def _check_metrics(results: Mapping[str, EvalResult], metrics: Sequence[str] | None) -> list[str]:
    if not results:
        raise ConfigError("no results to tabulate")
    columns = list(next(iter(results.values())).metrics if metrics is None else metrics)
    for system, result in results.items():
        for metric in columns:
            if metric not in result.means:
                raise ConfigError(f"system {system!r} has no value for metric {metric!r}")
    return columns


def _significant_cells(
    results: Mapping[str, EvalResult],
    baseline: str | None,
    significance: Sequence[SignificanceResult],
    alpha: float,
) -> set[tuple[str, str]]:
    """(system, metric) pairs to mark; checks the results match the table."""
    if baseline is not None and baseline not in results:
        raise ConfigError(f"baseline {baseline!r} is not among the systems {sorted(results)}")
    if significance and baseline is None:
        raise ConfigError("significance results need the baseline they were computed against")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha!r}")
    for s in significance:
        if s.baseline != baseline:
            raise ConfigError(
                f"significance of {s.system!r} on {s.metric!r} is against {s.baseline!r}, "
                f"not the table's baseline {baseline!r}"
            )
    return {(s.system, s.metric) for s in significance if s.significant(alpha)}


def _cell(mean: float, marked: bool) -> str:
    return f"{mean:.4f}{MARKER if marked else ' '}"


def _legend(
    baseline: str | None, significance: Sequence[SignificanceResult], alpha: float
) -> list[str]:
    if baseline is None:
        return []
    if not significance:
        return ["", f"baseline: {baseline} (no significance test)"]
    tests = ", ".join(sorted({_TEST_NAMES.get(s.test, s.test) for s in significance}))
    return [
        "",
        f"{MARKER} significantly different from baseline {baseline!r} "
        f"(two-sided {tests}, Holm-adjusted p < {alpha:g})",
    ]
