"""End-to-end CLI: retrieve a run with BM25, evaluate it, and fail cleanly on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crossrank.cli.main import main
from crossrank.data import read_run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny"


def test_retrieve_then_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_path = tmp_path / "bm25.run"
    code = main(["retrieve", "--data", str(EXAMPLE), "--split", "test", "--retriever", "bm25",
                 "--top-k", "5", "--out", str(run_path), "--quiet"])  # fmt: skip
    assert code == 0
    run = read_run(run_path)
    assert set(run) == {"q1", "q2", "q3", "q4"}
    assert all(0 < len(docs) <= 5 for docs in run.values())  # BM25 omits zero-score docs
    assert max(run["q2"], key=run["q2"].get) == "d05"  # "sleep ... memories" -> sleep & memory doc

    out_json = tmp_path / "metrics.json"
    code = main(["evaluate", "--data", str(EXAMPLE), "--split", "test", "--run", str(run_path),
                 "--metrics", "nDCG@10", "RR@10", "--json", str(out_json)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "nDCG@10" in printed and "bm25" in printed
    metrics = json.loads(out_json.read_text())
    assert list(metrics) == ["nDCG@10", "RR@10"]  # the contract: metric name -> mean
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


def test_evaluate_with_baseline_and_details(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.run", tmp_path / "bad.run"
    good.write_text("q1 Q0 d02 1 3 x\nq2 Q0 d05 1 3 x\nq3 Q0 d04 1 3 x\nq4 Q0 d03 1 3 x\n")
    bad.write_text("q1 Q0 d05 1 3 x\nq2 Q0 d03 1 3 x\nq3 Q0 d01 1 3 x\nq4 Q0 d12 1 3 x\n")
    details = tmp_path / "details.json"
    code = main(["evaluate", "--data", str(EXAMPLE), "--split", "test", "--run", str(good),
                 "--baseline", str(bad), "--metrics", "RR@10", "--details", str(details)])  # fmt: skip
    assert code == 0
    report = json.loads(details.read_text())
    assert report["baseline"] == "bad"
    assert report["systems"]["good"]["means"]["RR@10"] == 1.0
    assert report["systems"]["bad"]["means"]["RR@10"] == 0.0
    assert report["significance"][0]["system"] == "good"


def test_bad_input_exits_2_with_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    shutil.copytree(EXAMPLE, data)
    (data / "qrels" / "test.tsv").write_text("q1\td01\tyes\n")
    code = main(
        ["retrieve", "--data", str(data), "--split", "test", "--out", str(tmp_path / "x.run")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "crossrank retrieve: error:" in err
    assert "test.tsv:1: relevance grade must be an integer, got 'yes'" in err
    assert not (tmp_path / "x.run").exists()


def test_also_requires_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "a.run"
    run.write_text("q1 Q0 d02 1 3 x\n")
    code = main(["evaluate", "--data", str(EXAMPLE), "--split", "test", "--run", str(run),
                 "--also", str(run)])  # fmt: skip
    assert code == 2
    assert "--also needs --baseline" in capsys.readouterr().err
