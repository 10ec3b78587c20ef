"""Text table layout, significance markers, flat CLI JSON and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossrank.errors import ConfigError
from crossrank.evaluation import (
    MARKER,
    EvalResult,
    SignificanceResult,
    compare_results,
    evaluate,
    format_table,
    report_json,
    to_json,
    write_json,
)

QRELS = {"q1": {"a": 1}, "q2": {"b": 2, "c": 1}, "q3": {"d": 1}}
METRICS = ["nDCG@10", "RR@10"]


def results() -> dict[str, EvalResult]:
    weak = {"q1": {"a": 0.1, "x": 0.9}, "q2": {"b": 0.1, "y": 0.5}, "q3": {"z": 1.0}}
    strong = {"q1": {"a": 0.9, "x": 0.1}, "q2": {"b": 0.9, "c": 0.5}, "q3": {"d": 1.0}}
    return {
        "bm25": evaluate(weak, QRELS, METRICS),
        "cross-encoder": evaluate(strong, QRELS, METRICS),
    }


def sig(system: str, metric: str, p_adjusted: float, baseline: str = "bm25") -> SignificanceResult:
    return SignificanceResult(metric, system, baseline, 0.1, p_adjusted, p_adjusted, "t", 3)


def test_table_rows_columns_and_alignment() -> None:
    res = results()
    table = format_table(res, METRICS)
    lines = table.splitlines()
    assert lines[0].split() == ["system", "nDCG@10", "RR@10"]
    assert [line.split()[0] for line in lines[1:]] == ["bm25", "cross-encoder"]
    assert f"{res['bm25'].means['nDCG@10']:.4f}" in lines[1]
    assert "1.0000" in lines[2]
    # Right edges of the metric names line up with the right edges of the digits.
    for name in METRICS:
        end = lines[0].index(name) + len(name)
        for row in lines[1:]:
            assert row[end - 1].isdigit() and (len(row) == end or not row[end].isdigit())
    assert MARKER not in table and len(lines) == 3  # no baseline, no legend


def test_marker_only_where_significant_after_holm() -> None:
    significance = [sig("cross-encoder", "nDCG@10", 0.01), sig("cross-encoder", "RR@10", 0.2)]
    table = format_table(results(), METRICS, baseline="bm25", significance=significance)
    lines = table.splitlines()
    row = lines[2]
    assert row.count(MARKER) == 1
    assert row.split()[1].endswith(MARKER) and not row.split()[2].endswith(MARKER)
    assert MARKER not in lines[1]
    assert "baseline 'bm25'" in lines[-1] and "Holm" in lines[-1] and "t-test" in lines[-1]
    # A stricter alpha removes the marker.
    strict = format_table(results(), METRICS, "bm25", significance, alpha=0.005)
    assert MARKER not in strict.splitlines()[2]


def test_table_with_real_significance_results() -> None:
    res = results()
    significance = compare_results(res, "bm25", test="randomization", n_samples=200)
    table = format_table(res, baseline="bm25", significance=significance)
    assert "randomisation" in table.splitlines()[-1]
    marked = sum(s.significant() for s in significance)
    assert table.count(MARKER) == marked + 1  # plus the legend's marker


def test_baseline_without_tests_has_plain_legend() -> None:
    table = format_table(results(), baseline="bm25")
    assert table.splitlines()[-1] == "baseline: bm25 (no significance test)"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"metrics": ["AP"]}, "'AP'"),
        ({"baseline": "nope"}, "'nope'"),
        ({"significance": [sig("cross-encoder", "RR@10", 0.01)]}, "baseline"),
        (
            {"baseline": "bm25", "significance": [sig("cross-encoder", "RR@10", 0.01, "x")]},
            "'x'",
        ),
        ({"baseline": "bm25", "alpha": 0.0}, "alpha"),
    ],
)
def test_table_rejects_inconsistent_input(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        format_table(results(), **kwargs)
    assert needle in str(info.value)
    with pytest.raises(ConfigError, match="no results"):
        format_table({})


def test_flat_json_maps_metric_to_mean(tmp_path: Path) -> None:
    result = results()["cross-encoder"]
    flat = to_json(result)
    assert flat == result.means
    assert list(flat) == METRICS
    out = tmp_path / "nested" / "metrics.json"
    write_json(out, flat)
    assert json.loads(out.read_text(encoding="utf-8")) == flat
    assert [p.name for p in out.parent.iterdir()] == ["metrics.json"]  # no temp left


def test_report_json_round_trips(tmp_path: Path) -> None:
    res = results()
    significance = compare_results(res, "bm25", test="t")
    report = report_json(res, baseline="bm25", significance=significance)
    out = tmp_path / "report.json"
    write_json(out, report)
    loaded = json.loads(out.read_text(encoding="utf-8"))
    assert loaded["schema_version"] == 1 and loaded["baseline"] == "bm25"
    system = loaded["systems"]["cross-encoder"]
    assert system["means"] == res["cross-encoder"].means
    assert system["per_query"]["RR@10"] == res["cross-encoder"].per_query["RR@10"]
    assert system["num_queries"] == 3
    assert loaded["significance"][0]["system"] == "cross-encoder"
    assert loaded["significance"][0]["p_adjusted"] == significance[0].p_adjusted
    slim = report_json(res, include_per_query=False)
    assert "per_query" not in slim["systems"]["bm25"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    write_json(out, {"RR": 0.5})
    with pytest.raises(ConfigError, match=r"metrics\.json"):
        write_json(out, {"RR": float("nan")})
    with pytest.raises(ConfigError):
        write_json(out, {"RR": object()})
    assert json.loads(out.read_text(encoding="utf-8")) == {"RR": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
