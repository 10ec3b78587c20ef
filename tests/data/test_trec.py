"""TREC run and qrels files."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossrank.data import read_run, read_trec_qrels, write_run, write_trec_qrels
from crossrank.errors import ConfigError, DataFormatError


def test_run_round_trip_sorted_with_ties_by_docid(tmp_path: Path) -> None:
    path = tmp_path / "x.run"
    write_run(path, {"q1": {"b": 1.0, "a": 1.0, "c": 3.0}, "q2": {"z": -0.5}}, tag="t")
    lines = path.read_text().splitlines()
    assert lines == ["q1 Q0 c 1 3.0 t", "q1 Q0 a 2 1.0 t", "q1 Q0 b 3 1.0 t", "q2 Q0 z 1 -0.5 t"]
    assert read_run(path) == {"q1": {"a": 1.0, "b": 1.0, "c": 3.0}, "q2": {"z": -0.5}}


def test_run_scores_survive_exactly(tmp_path: Path) -> None:
    path = tmp_path / "x.run"
    score = 0.1 + 0.2
    write_run(path, {"q": {"d": score}})
    assert read_run(path)["q"]["d"] == score


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("q1 Q0 d1 1 2.0\n", r"x\.run:1: expected 6 whitespace-separated fields"),
        ("q1 Q0 d1 one 2.0 t\n", r"x\.run:1: rank must be an integer, got 'one'"),
        ("q1 Q0 d1 1 high t\n", r"x\.run:1: score must be a number, got 'high'"),
        ("q1 Q0 d1 1 nan t\n", r"x\.run:1: score must be finite, got 'nan'"),
        (
            "q1 Q0 d1 1 2 t\nq1 Q0 d1 2 1 t\n",
            r"x\.run:2: duplicate entry for query 'q1', document 'd1'",
        ),
        ("", r"x\.run: file is empty"),
        (b"q1 Q0 d\xc3 1 2 t\n", r"x\.run:1: invalid UTF-8"),
    ],
)
def test_malformed_run(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "x.run"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(DataFormatError, match=message):
        read_run(path)


def test_write_run_rejects_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "x.run"
    with pytest.raises(ConfigError, match=r"non-finite score inf for query 'q', document 'd'"):
        write_run(path, {"q": {"d": float("inf")}})
    assert not path.exists()  # nothing partial left behind
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="run tag"):
        write_run(path, {"q": {"d": 1.0}}, tag="has space")


def test_trec_qrels_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "q.qrels"
    write_trec_qrels(path, {"q1": {"d1": 2, "d2": 0}})
    assert read_trec_qrels(path) == {"q1": {"d1": 2, "d2": 0}}
    path.write_text("q1 0 d1 1.5\n")
    with pytest.raises(
        DataFormatError, match=r"q\.qrels:1: relevance grade must be an integer, got '1\.5'"
    ):
        read_trec_qrels(path)
    path.write_text("q1 0 d1\n")
    with pytest.raises(DataFormatError, match=r"q\.qrels:1: expected 4 fields"):
        read_trec_qrels(path)
