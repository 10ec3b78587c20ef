"""Public API of crossrank.CrossEncoder: rank, rerank, Scorer protocol, argument checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossrank import CrossEncoder
from crossrank.errors import BackendUnavailableError, ConfigError
from crossrank.models.tiny import build_tiny_checkpoint
from crossrank.protocols import Scorer

DOCS = [
    "bm25 is a ranking function",
    "cats and dogs",
    "",
    "search query model",
    "gene cancer study",
]


@pytest.fixture(scope="module")
def ce(tmp_path_factory: pytest.TempPathFactory) -> CrossEncoder:
    path = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")
    return CrossEncoder.from_pretrained(path, backend="torch", device="cpu", max_length=64)


def test_rank_sorts_by_score_and_cuts_top_k(ce: CrossEncoder) -> None:
    scores = ce.predict([("what is bm25", d) for d in DOCS])
    ranked = ce.rank("what is bm25", DOCS, top_k=3)
    assert [r.index for r in ranked] == np.argsort(-scores, kind="stable")[:3].tolist()
    assert [r.score for r in ranked] == pytest.approx(np.sort(scores)[::-1][:3].tolist())
    assert len(ce.rank("what is bm25", DOCS)) == len(DOCS)


def test_rerank_rescores_first_stage_top_k_only(ce: CrossEncoder) -> None:
    queries = {"q1": "what is bm25", "q2": "cats"}
    docs = {f"d{i}": text for i, text in enumerate(DOCS)}
    run = {
        "q1": {"d0": 9.0, "d1": 8.0, "d2": 7.0, "d3": 1.0},
        "q2": {"d4": 2.0, "d1": 2.0},
        "q3": {},
    }
    queries["q3"] = "unused"
    out = ce.rerank(run, queries, docs, top_k=2)
    assert ce.last_stats.pairs == 4  # both queries scored in one bulk call
    assert set(out) == {"q1", "q2", "q3"}
    assert set(out["q1"]) == {"d0", "d1"}  # first-stage top 2; d2, d3 are dropped
    assert set(out["q2"]) == {"d1", "d4"}
    expected = ce.predict([("what is bm25", DOCS[0]), ("what is bm25", DOCS[1])])
    assert [out["q1"]["d0"], out["q1"]["d1"]] == pytest.approx(expected.tolist())


def test_rerank_names_missing_query_and_documents(ce: CrossEncoder) -> None:
    with pytest.raises(ConfigError, match="query 'qx'"):
        ce.rerank({"qx": {"d0": 1.0}}, {}, {"d0": "x"})
    with pytest.raises(ConfigError, match="missing from docs: \\['nope'\\]"):
        ce.rerank({"q": {"nope": 1.0}}, {"q": "cats"}, {})


def test_scorer_protocol_and_empty_input(ce: CrossEncoder) -> None:
    assert isinstance(ce, Scorer)
    np.testing.assert_array_equal(ce.score(["cats"], ["dogs"]), ce.predict([("cats", "dogs")]))
    assert ce.predict([]).shape == (0,)
    assert ce.last_stats.pairs == 0


def test_bad_pairs_are_rejected(ce: CrossEncoder) -> None:
    with pytest.raises(ConfigError, match="tuples"):
        ce.predict([("a", "b", "c")])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="string"):
        ce.predict("query")  # type: ignore[arg-type]


def test_constructor_validates_backend_device_and_length(tmp_path: Path) -> None:
    path = build_tiny_checkpoint(tmp_path / "m", max_positions=64)
    with pytest.raises(ConfigError, match="backend must be one of"):
        CrossEncoder.from_pretrained(path, backend="tensorrt", device="cpu")
    with pytest.raises(BackendUnavailableError, match="needs a GPU"):
        CrossEncoder.from_pretrained(path, backend="torch-bf16", device="cpu")
    with pytest.raises(ConfigError, match="exceeds the model's 64 positions"):
        CrossEncoder.from_pretrained(path, backend="torch", device="cpu", max_length=128)
    assert CrossEncoder.from_pretrained(path, backend="torch", device="cpu").max_length == 64


def test_count_tokens_matches_what_predict_scores(ce: CrossEncoder) -> None:
    long_doc = " ".join(["word"] * 200)  # far beyond max_length=64
    pairs = [("what is bm25", d) for d in [*DOCS, long_doc]]
    counts = ce.count_tokens(pairs)
    ce.predict(pairs)
    assert counts.truncated.tolist() == [False] * len(DOCS) + [True]
    assert int(counts.truncated.sum()) == ce.last_stats.truncated_pairs
    assert int(counts.tokens.sum()) == ce.last_stats.tokens
    assert counts.tokens[-1] == 64  # the long pair fills the input exactly
