"""Report accuracy tables, cell formatting and the Markdown/HTML renderers."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from crossrank.errors import ConfigError
from crossrank.evaluation.confidence import bootstrap_ci
from crossrank.evaluation.pareto import ParetoPoint, pareto_png
from crossrank.evaluation.report.layout import multi_metric_table
from crossrank.evaluation.report.model import AccuracyRow, FigureFile, StatsSettings
from crossrank.evaluation.report.render import (
    Bullets,
    Code,
    Heading,
    Image,
    Paragraph,
    Table,
    to_html,
    to_markdown,
)
from crossrank.evaluation.report.stats import accuracy_table
from crossrank.evaluation.report.text import ci_cell, mib, ms, p_cell
from crossrank.evaluation.significance import compare


def _values(seed: int, n: int = 15) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {f"q{i}": float(v) for i, v in enumerate(rng.random(n))}


def test_accuracy_table_matches_bootstrap_and_holm() -> None:
    per_query = {"bm25": _values(0), "dense": _values(1), "ce": _values(2)}
    stats = StatsSettings(test="randomization", n_samples=300, confidence=0.9, seed=3)
    table = accuracy_table(per_query, "bm25", "nDCG@10", stats)
    assert [r.system for r in table.rows] == ["bm25", "dense", "ce"]
    assert table.n_queries == 15
    expected = {r.system: r for r in compare(per_query, "bm25", metric="nDCG@10",
                                             test="randomization", n_samples=300, seed=3)}  # fmt: skip
    for row in table.rows:
        ci = bootstrap_ci(per_query[row.system], 300, 0.9, 3)
        assert (row.mean, row.ci_low, row.ci_high) == pytest.approx((ci.mean, ci.low, ci.high))
        if row.system == "bm25":
            assert row.p_value is None and row.p_adjusted is None
        else:
            assert row.p_adjusted == pytest.approx(expected[row.system].p_adjusted)
    assert table.row("ce").system == "ce"
    with pytest.raises(ConfigError, match="'nope'"):
        table.row("nope")
    with pytest.raises(ConfigError, match="baseline"):
        accuracy_table(per_query, "hybrid", "nDCG@10", stats)


def test_multi_metric_table_has_a_ci_and_p_column_per_metric() -> None:
    per_query = {"bm25": _values(0), "ce": _values(5)}
    stats = StatsSettings(n_samples=200)
    tables = (
        accuracy_table(per_query, "bm25", "nDCG@10", stats),
        accuracy_table(per_query, "bm25", "RR@10", stats),
    )
    rendered = multi_metric_table(tables, alpha=0.05)
    assert rendered.header == ("system", "nDCG@10 [CI]", "p", "RR@10 [CI]", "p")
    assert rendered.rows[0][2] == "—"
    assert rendered.rows[1][1] == ci_cell(tables[0].row("ce"))


def test_cells() -> None:
    assert ci_cell(AccuracyRow("x", 0.71234, 0.65, 0.775, None, None)) == "0.7123 [0.650, 0.775]"
    assert p_cell(None, 0.05) == "—"
    assert p_cell(0.2, 0.05) == "0.2000"
    assert p_cell(0.01, 0.05) == "0.0100†"
    assert p_cell(1e-6, 0.05) == "1.00e-06†"
    assert (ms(0.5), ms(12.345), ms(250.4)) == ("0.500", "12.35", "250")
    assert (mib(None), mib(2**21)) == ("—", "2.0")


def test_markdown_and_html_render_the_same_blocks() -> None:
    png = pareto_png([ParetoPoint("bm25", 1.0, 0.5)])
    blocks = [
        Heading(1, "Title <x>"),
        Paragraph("Uses `crossrank report` & more."),
        Table(("a", "b|c"), (("1", "<2>"),)),
        Image("fig.png", "A figure"),
        Code("crossrank report --out 'x y'"),
        Bullets(("one", "two")),
    ]
    md = to_markdown(blocks)
    assert "# Title <x>" in md
    assert "| a | b\\|c |\n|---|---|\n| 1 | <2> |" in md
    assert "![A figure](fig.png)" in md
    assert "```\ncrossrank report --out 'x y'\n```" in md
    assert "- one\n- two" in md
    page = to_html(blocks, {"fig.png": png}, "Title")
    assert page.startswith("<!DOCTYPE html>")
    assert "<h1>Title &lt;x&gt;</h1>" in page
    assert "Uses <code>crossrank report</code> &amp; more." in page
    assert "<td>&lt;2&gt;</td>" in page
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    assert "<li>two</li>" in page
    assert "<style>" in page and "http" not in page.split("<body>")[1]  # nothing external


def test_render_errors() -> None:
    with pytest.raises(ConfigError, match="cells"):
        Table(("a", "b"), (("1",),))
    with pytest.raises(ConfigError, match="no PNG data"):
        to_html([Image("missing.png", "x")], {}, "t")
    with pytest.raises(ConfigError, match="plain"):
        FigureFile("sub/x.png", "x", b"\x89PNG")
    with pytest.raises(ConfigError, match="not PNG"):
        FigureFile("x.png", "x", b"GIF89a")
