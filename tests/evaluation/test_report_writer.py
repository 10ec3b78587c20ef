"""Writing a report folder: every file, JSON schema, atomic replacement, refusal to clobber."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from crossrank.errors import ConfigError
from crossrank.evaluation.pareto import ParetoPoint, pareto_png
from crossrank.evaluation.report import model as report_model
from crossrank.evaluation.report import writer
from crossrank.evaluation.report.model import (
    SCHEMA_VERSION,
    AccuracySection,
    FigureFile,
    Report,
    StatsSettings,
    SystemInfo,
)
from crossrank.evaluation.report.stats import accuracy_table


@functools.cache
def _png() -> bytes:
    return pareto_png([ParetoPoint("bm25", 1.0, 0.5)])


def _report(title: str = "tiny report") -> Report:
    rng = np.random.default_rng(0)
    per_query = {s: {f"q{i}": float(rng.random()) for i in range(6)} for s in ("bm25", "dense")}
    stats = StatsSettings(n_samples=200)
    table = accuracy_table(per_query, "bm25", "nDCG@10", stats)
    figure = FigureFile("pareto.png", "accuracy vs latency", _png())
    return Report(
        title=title,
        created="2026-01-01T00:00:00Z",
        command="crossrank report --data examples/tiny --split test --out out",
        data="examples/tiny",
        split="test",
        n_queries=6,
        stats=stats,
        settings=(("systems", "bm25 dense"),),
        accuracy=AccuracySection(
            (SystemInfo("bm25", "BM25"), SystemInfo("dense", "MiniLM")), (table,)
        ),
        calibration=None,
        robustness=None,
        efficiency=None,
        tradeoff=None,
        figures=(figure,),
        notes=("a note",),
    )


def test_write_report_writes_every_file(tmp_path: Path) -> None:
    out = writer.write_report(_report(), tmp_path / "rep")
    assert sorted(p.name for p in out.iterdir()) == [
        "pareto.png", "report.html", "report.json", "report.md",
    ]  # fmt: skip
    payload = json.loads((out / "report.json").read_text())
    assert payload["schema_version"] == SCHEMA_VERSION
    assert payload["kind"] == "crossrank-report"
    assert payload["figures"] == [{"name": "pareto.png", "caption": "accuracy vs latency"}]
    assert payload["settings"] == {"systems": "bm25 dense"}
    rows = payload["accuracy"]["tables"][0]["rows"]
    assert [r["system"] for r in rows] == ["bm25", "dense"]
    assert rows[0]["p_value"] is None and 0 <= rows[1]["p_adjusted"] <= 1
    md = (out / "report.md").read_text()
    assert md.startswith("# tiny report")
    assert "## Calibration" in md and "Not computed" in md
    assert "- a note" in md
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_rewriting_a_report_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    writer.write_report(_report("first"), out)
    writer.write_report(_report("second"), out)
    assert json.loads((out / "report.json").read_text())["title"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # no temp or old folders


def test_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path: Path) -> None:
    precious = tmp_path / "docs"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="does not hold a crossrank report"):
        writer.write_report(_report(), precious)
    assert (precious / "notes.txt").read_text() == "keep me"
    file_target = tmp_path / "file"
    file_target.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        writer.check_output_dir(file_target)
    (tmp_path / "empty").mkdir()
    writer.check_output_dir(tmp_path / "empty")  # an empty folder is fine


def test_a_failure_leaves_no_partial_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "rep"
    writer.write_report(_report("kept"), out)

    def broken(*args: object) -> dict[str, object]:
        raise ConfigError("boom")

    monkeypatch.setattr(writer, "report_json", broken)
    with pytest.raises(ConfigError, match="boom"):
        writer.write_report(_report("lost"), out)
    assert json.loads((out / "report.json").read_text())["title"] == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    with pytest.raises(ConfigError, match="boom"):
        writer.write_report(_report("lost"), tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_duplicate_figure_names_are_rejected() -> None:
    figure = _report().figures[0]
    with pytest.raises(ConfigError, match="unique"):
        report_model.Report(**{**_fields(_report()), "figures": (figure, figure)})


def _fields(report: Report) -> dict[str, object]:
    return {name: getattr(report, name) for name in Report.__dataclass_fields__}
