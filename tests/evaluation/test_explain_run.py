"""Run mode: which pairs get explained, and the explanations of a tiny run."""

from __future__ import annotations

import pytest

from crossrank.errors import ConfigError
from crossrank.evaluation.explain import IGConfig, RunSelection, explain_run, select_pairs
from crossrank.inference import CrossEncoder
from crossrank.models.tiny import build_tiny_checkpoint

RUN = {
    "q2": {"a": 1.0, "b": 3.0, "c": 2.0},
    "q1": {"x": 0.5, "y": 0.5, "z": 0.9},
}
QUERIES = {"q1": "cats and dogs", "q2": "protein in blood cells"}
DOCS = {
    "a": "Cats purr. Dogs bark.",
    "b": "Blood cells carry protein. The study results.",
    "c": "Gene effect in cancer.",
    "x": "Long text.",
    "y": "Short text.",
    "z": "Cats and dogs. A model.",
}


def test_top_n_per_query_by_score_ties_by_doc_id() -> None:
    pairs = select_pairs(RUN, QUERIES, DOCS, RunSelection(top_n=2))
    assert pairs == [("q1", "z"), ("q1", "x"), ("q2", "b"), ("q2", "c")]
    assert select_pairs(RUN, QUERIES, DOCS, RunSelection(top_n=5, max_queries=1)) == [
        ("q1", "z"),
        ("q1", "x"),
        ("q1", "y"),
    ]


def test_missing_ids_and_bad_bounds_raise() -> None:
    with pytest.raises(ConfigError, match="'q2' is in the run but not in the queries"):
        select_pairs(RUN, {"q1": "cats"}, DOCS, RunSelection())
    with pytest.raises(ConfigError, match="document 'z' is not in the corpus"):
        select_pairs(RUN, QUERIES, {"x": "t"}, RunSelection())
    with pytest.raises(ConfigError, match="top_n"):
        RunSelection(top_n=0)
    with pytest.raises(ConfigError, match="max_queries"):
        RunSelection(max_queries=0)


def test_explain_run_explains_each_selected_pair(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = build_tiny_checkpoint(tmp_path_factory.mktemp("run") / "tiny")
    encoder = CrossEncoder.from_pretrained(path, backend="torch", device="cpu")
    selection = RunSelection(top_n=1, ig=IGConfig(steps=4))
    explanations = explain_run(encoder, RUN, QUERIES, DOCS, selection)
    assert [(e.query_id, e.doc_id) for e in explanations] == [("q1", "z"), ("q2", "b")]
    expected = encoder.predict([(QUERIES["q1"], DOCS["z"]), (QUERIES["q2"], DOCS["b"])])
    assert [e.score for e in explanations] == pytest.approx(expected.tolist(), abs=1e-5)
    assert explanations[1].sentences.full_score == pytest.approx(float(expected[1]), abs=1e-5)
    assert len(explanations[1].sentences.effects) == 2
