"""``crossrank explain`` end to end with a tiny random checkpoint: pair and run modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossrank.cli.main import main
from crossrank.data import write_run
from crossrank.models.tiny import build_tiny_checkpoint

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("models") / "tiny")


def test_pair_mode_writes_html_and_json(tmp_path: Path, tiny_model: Path) -> None:
    out, json_out = tmp_path / "why.html", tmp_path / "why.json"
    code = main(["explain", "--model", str(tiny_model), "--query", "what is bm25",
                 "--doc", "BM25 is a ranking model. Cats purr.", "--steps", "8",
                 "--max-length", "64", "--out", str(out), "--json", str(json_out), "--quiet"])  # fmt: skip
    assert code == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Sentence deletion" in page
    data = json.loads(json_out.read_text(encoding="utf-8"))
    assert data["integrated_gradients"]["steps"] == 8
    assert [s["sentence"] for s in data["sentence_deletion"]["sentences"]] == [
        "BM25 is a ranking model.",
        "Cats purr.",
    ]
    assert data["attention"]["shape"][:2] == [2, 2]


def test_run_mode_writes_a_report_directory(tmp_path: Path, tiny_model: Path) -> None:
    run_path, out = tmp_path / "first.run", tmp_path / "report"
    write_run(run_path, {"q1": {"d01": 2.0, "d02": 1.0, "d03": 0.5}, "q2": {"d04": 1.0}})
    code = main(["explain", "--model", str(tiny_model), "--data", str(EXAMPLE),
                 "--split", "test", "--run", str(run_path), "--top-n", "2",
                 "--max-queries", "1", "--steps", "4", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "index.html",
        "pair-0001.html",
        "pair-0001.json",
        "pair-0002.html",
        "pair-0002.json",
    ]
    pairs = [json.loads((out / f"pair-000{i}.json").read_text()) for i in (1, 2)]
    assert [(p["query_id"], p["doc_id"]) for p in pairs] == [("q1", "d01"), ("q1", "d02")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--query", "q"], "missing --doc"),
        (["--data", "x", "--split", "test"], "missing --run"),
        (["--query", "q", "--doc", "d", "--top-n", "2"], "not both: got --query, --doc, --top-n"),
    ],
)
def test_mixed_or_incomplete_modes_fail_without_output(
    tmp_path: Path,
    tiny_model: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    out = tmp_path / "o.html"
    assert main(["explain", "--model", str(tiny_model), "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_model_and_query_fail_cleanly(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.html"
    base = ["explain", "--doc", "Some text.", "--out", str(out)]
    assert main([*base, "--model", str(tmp_path / "missing"), "--query", "q"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*base, "--model", str(tiny_model), "--query", " "]) == 2
    assert "query is empty" in capsys.readouterr().err
    assert not out.exists()
