"""``crossrank rerank`` end to end on the tiny example with a tiny random checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossrank.cli.main import main
from crossrank.data import load_collection, read_run, write_run
from crossrank.evaluation import evaluate
from crossrank.inference import CrossEncoder
from crossrank.models.tiny import build_tiny_checkpoint

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("models") / "tiny")


def test_rerank_writes_scores_equal_to_predict(tmp_path: Path, tiny_model: Path) -> None:
    col = load_collection(EXAMPLE, "test")
    first = {
        qid: {doc_id: float(-i) for i, doc_id in enumerate(sorted(col.corpus))}
        for qid in col.queries
    }
    first_path, out = tmp_path / "first.run", tmp_path / "reranked.run"
    write_run(first_path, first)
    code = main(["rerank", "--data", str(EXAMPLE), "--split", "test", "--run", str(first_path),
                 "--model", str(tiny_model), "--top-k", "5", "--backend", "torch",
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    reranked = read_run(out)
    assert set(reranked) == set(col.queries)
    assert all(len(docs) == 5 for docs in reranked.values())
    top5 = sorted(col.corpus)[:5]  # the first stage's top-5 (scores 0, -1, ... by doc id)
    model = CrossEncoder.from_pretrained(tiny_model, backend="torch")
    expected = model.predict([(col.queries["q1"].text, col.corpus[d].full_text) for d in top5])
    got = np.array([reranked["q1"][d] for d in top5])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_rerank_with_passages(tmp_path: Path, tiny_model: Path) -> None:
    first_path, out = tmp_path / "first.run", tmp_path / "reranked.run"
    write_run(first_path, {"q1": {"d01": 2.0, "d02": 1.0}})
    code = main(["rerank", "--data", str(EXAMPLE), "--split", "test", "--run", str(first_path),
                 "--model", str(tiny_model), "--passages", "16,8", "--aggregate", "maxp",
                 "--backend", "torch", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    assert set(read_run(out)["q1"]) == {"d01", "d02"}


def test_rerank_bad_passages_and_model(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first_path = tmp_path / "first.run"
    write_run(first_path, {"q1": {"d01": 2.0}})
    base = [
        "rerank",
        "--data",
        str(EXAMPLE),
        "--split",
        "test",
        "--run",
        str(first_path),
        "--out",
        str(tmp_path / "o.run"),
    ]
    assert main([*base, "--model", str(tiny_model), "--passages", "16"]) == 2
    assert "--passages must look like 'WINDOW,STRIDE', got '16'" in capsys.readouterr().err
    assert main([*base, "--model", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.run").exists()


def test_rerank_defaults_to_the_shipped_reranker_which_beats_a_bad_first_stage(
    tmp_path: Path,
) -> None:
    # The first stage lists every document in reverse id order; the shipped SciFact reranker
    # (no --model given) must put the judged documents back on top.
    col = load_collection(EXAMPLE, "test")
    docs = sorted(col.corpus, reverse=True)
    first = {qid: {d: float(-i) for i, d in enumerate(docs)} for qid in col.queries}
    first_path, out = tmp_path / "first.run", tmp_path / "reranked.run"
    write_run(first_path, first)
    code = main(["rerank", "--data", str(EXAMPLE), "--split", "test", "--run", str(first_path),
                 "--top-k", str(len(docs)), "--backend", "torch", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    before = evaluate(first, col.qrels, ["nDCG@10"]).means["nDCG@10"]
    after = evaluate(read_run(out), col.qrels, ["nDCG@10"]).means["nDCG@10"]
    assert after > before + 0.2, (before, after)
