"""HTML and JSON output of explanations: escaping, self-containment, atomic writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crossrank.evaluation.explain import (
    IGConfig,
    PairExplanation,
    explain_pair,
    render_pair_html,
    write_explanation_json,
    write_pair_html,
    write_run_report,
)
from crossrank.evaluation.explain.render import diverging_colour
from crossrank.inference import CrossEncoder
from crossrank.models.tiny import build_tiny_checkpoint

QUERY = 'what is bm25 <img src=x onerror="alert(1)">'
DOC = "BM25 is a ranking model & more. <script>alert('x')</script> Cats purr. Dogs bark."


@pytest.fixture(scope="module")
def explanation(tmp_path_factory: pytest.TempPathFactory) -> PairExplanation:
    path = build_tiny_checkpoint(tmp_path_factory.mktemp("render") / "tiny")
    encoder = CrossEncoder.from_pretrained(path, backend="torch", device="cpu")
    return explain_pair(encoder, QUERY, DOC, IGConfig(steps=8), query_id="q<1>", doc_id='d"1')


def test_all_text_is_escaped(explanation: PairExplanation) -> None:
    page = render_pair_html(explanation)
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;" in page
    assert "q&lt;1&gt;" in page and "d&quot;1" in page


def test_page_is_self_contained(explanation: PairExplanation) -> None:
    page = render_pair_html(explanation)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//|file:)", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    for section in ("Integrated gradients", "Sentence deletion", "Attention"):
        assert f"<h2>{section}" in page
    # One token span per query and document token, one bar per sentence.
    attributions = explanation.attributions
    spans = re.findall(r'class="tok(?: cont)?"', page)
    assert len(spans) == len(attributions.query_tokens) + len(attributions.doc_tokens)
    assert page.count('class="bar"') == len(explanation.sentences.effects)
    assert f"{attributions.relative_error:.3%}" in page


def test_token_colours_follow_attribution_sign(explanation: PairExplanation) -> None:
    page = render_pair_html(explanation)
    attributions = explanation.attributions
    values = [*attributions.query_attributions.tolist(), *attributions.doc_attributions.tolist()]
    colours = re.findall(r'class="tok[^"]*" style="background:(#[0-9a-f]{6})', page)
    assert len(colours) == len(values)
    for value, colour in zip(values, colours, strict=True):
        red, blue = int(colour[1:3], 16), int(colour[5:7], 16)
        assert (red > blue) if value > 0 else (blue >= red)


def test_diverging_colour_scale() -> None:
    assert diverging_colour(0.5, 1.0) == "#e48090"  # halfway from white to #ca0020
    assert diverging_colour(-0.5, 0.0) == "#ffffff"


def test_html_and_json_are_written_atomically(explanation: PairExplanation, tmp_path: Path) -> None:
    html_path = write_pair_html(tmp_path / "out" / "pair.html", explanation)
    json_path = write_explanation_json(tmp_path / "out" / "pair.json", explanation)
    assert html_path.read_text(encoding="utf-8") == render_pair_html(explanation)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["query"] == QUERY and data["doc_id"] == 'd"1'
    assert data["integrated_gradients"]["relative_error"] == explanation.attributions.relative_error
    assert data["attention"]["shape"] == list(explanation.attention.weights.shape)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pair.html", "pair.json"]


def test_run_report_directory(explanation: PairExplanation, tmp_path: Path) -> None:
    out = write_run_report(tmp_path / "report", [explanation, explanation])
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "index.html",
        "pair-0001.html",
        "pair-0001.json",
        "pair-0002.html",
        "pair-0002.json",
    ]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="pair-0002.html"' in index and "q&lt;1&gt;" in index
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temp directory left
