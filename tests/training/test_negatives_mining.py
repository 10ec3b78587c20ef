"""Model-mined negatives (streamed, bounded memory), pair scoring and the false-negative guard."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from crossrank.errors import ConfigError, CrossrankError, DataWarning
from crossrank.training.negatives import (
    TopK,
    drop_false_negatives,
    guard_false_negatives,
    mine_candidates,
    mine_corpus,
    score_run,
)


class ProductScorer:
    """Trivial numpy scorer: query and document texts are numbers; the score is their product."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        self.calls.append(len(docs))
        return np.asarray(queries, dtype=np.float64) * np.asarray(docs, dtype=np.float64)


def numeric_stream(n: int, levels: int = 1000) -> Iterator[tuple[str, str]]:
    # Few distinct values, so many ties cross chunk boundaries.
    values = [str(v / 10) for v in range(levels)]
    for i in range(n):
        yield f"d{i}", values[(i * 7919) % levels]


def brute_force(query: float, n: int, k: int, levels: int, exclude: set[str]) -> dict[str, float]:
    ids = [f"d{i}" for i in range(n)]
    scores = query * np.array([(i * 7919) % levels / 10 for i in range(n)])
    order = np.lexsort((np.arange(n), -scores))  # by score desc, then stream position
    kept = [i for i in order.tolist() if ids[i] not in exclude][:k]
    return {ids[i]: float(scores[i]) for i in kept}


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 5000])
def test_mine_corpus_equals_brute_force(chunk_size: int) -> None:
    queries = {"up": "1", "down": "-1", "half": "0.5"}
    qrels = {"up": {"d321": 1, "d0": 0}, "down": {"d1": 2}}
    mined = mine_corpus(
        queries, numeric_stream(700, 37), ProductScorer(), 5, qrels=qrels, chunk_size=chunk_size
    )
    assert mined["up"] == brute_force(1.0, 700, 5, 37, {"d321"})
    assert mined["down"] == brute_force(-1.0, 700, 5, 37, {"d1"})
    assert mined["half"] == brute_force(0.5, 700, 5, 37, set())
    assert list(mined["up"]) == list(brute_force(1.0, 700, 5, 37, {"d321"}))  # order too


def test_mine_corpus_keeps_fewer_when_corpus_is_small() -> None:
    mined = mine_corpus({"q": "1"}, numeric_stream(3), ProductScorer(), 10)
    assert len(mined["q"]) == 3


def test_mine_corpus_memory_is_bounded_on_a_200k_stream() -> None:
    queries = {"a": "1", "b": "-1"}

    def peak_bytes(n: int) -> int:
        tracemalloc.start()
        try:
            mine_corpus(queries, numeric_stream(n), ProductScorer(), 10, chunk_size=2000)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak_bytes(20_000), peak_bytes(200_000)
    # 10x the documents, (about) the same peak: memory depends on chunk and k, not corpus.
    assert large < 1.5 * small
    # A float64 (queries x corpus) score matrix alone would take 2 * 200k * 8 B = 3.2 MB.
    assert large < 1_000_000


def test_topk_structure_has_fixed_size() -> None:
    top = TopK(rows=3, k=4)
    rng = np.random.default_rng(0)
    for _ in range(50):
        top.push(1, rng.random(100), np.array([f"d{i}" for i in range(100)], dtype=object))
    assert top.scores.shape == top.ids.shape == top.positions.shape == (3, 4)
    assert top.counts.tolist() == [0, 4, 0]
    assert top.result(0) == []


def test_scorer_errors_are_reported() -> None:
    class Bad:
        def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
            return np.full(len(docs), np.nan)

    with pytest.raises(CrossrankError, match=r"non-finite scores \(query 'q'\)"):
        mine_corpus({"q": "1"}, numeric_stream(3), Bad(), 2)

    class Short:
        def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
            return np.zeros(1)

    with pytest.raises(CrossrankError, match=r"returned 1 scores for 3 pairs"):
        mine_corpus({"q": "1"}, numeric_stream(3), Short(), 2)


def test_score_run_batches_pairs_and_checks_texts() -> None:
    scorer = ProductScorer()
    run = {"q1": {"a": 0.0, "b": 0.0, "c": 0.0}, "q2": {"a": 0.0, "c": 0.0}}
    texts = {"a": "1", "b": "2", "c": "3"}
    scored = score_run({"q1": "1", "q2": "10"}, run, texts, scorer, batch_size=2)
    assert scored == {"q1": {"a": 1.0, "b": 2.0, "c": 3.0}, "q2": {"a": 10.0, "c": 30.0}}
    assert scorer.calls == [2, 2, 1]
    with pytest.raises(ConfigError, match=r"no text for queries \[\] / documents \['z'\]"):
        score_run({"q1": "1"}, {"q1": {"z": 0.0}}, texts, scorer)


def test_mine_candidates_excludes_relevant_and_keeps_top_k() -> None:
    pool = {"q": {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}}
    texts = {"a": "4", "b": "3", "c": "2", "d": "1"}
    scorer = ProductScorer()
    mined = mine_candidates({"q": "1"}, pool, texts, scorer, 2, qrels={"q": {"a": 1}})
    assert mined == {"q": {"b": 3.0, "c": 2.0}}
    assert scorer.calls == [3]  # the relevant document is never scored


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_mine_candidates_equals_full_scoring(batch_size: int) -> None:
    rng = np.random.default_rng(0)
    texts = {f"d{i}": str(rng.integers(0, 9)) for i in range(50)}
    pool = {f"q{q}": {f"d{i}": 0.0 for i in rng.choice(50, 20, replace=False)} for q in range(6)}
    queries = {f"q{q}": str(q - 2) for q in range(6)}
    qrels = {"q0": {next(iter(pool["q0"])): 1}}
    mined = mine_candidates(
        queries, pool, texts, ProductScorer(), 4, qrels=qrels, batch_size=batch_size
    )
    full = score_run(queries, pool, texts, ProductScorer())
    for qid, scores in full.items():
        kept = [(d, s) for d, s in scores.items() if d not in qrels.get(qid, {})]
        kept.sort(key=lambda item: -item[1])  # stable: ties keep pool order
        assert list(mined[qid].items()) == kept[:4]


# --- false-negative guard ----------------------------------------------------------------


def test_guard_rule_is_strictly_above_min_positive_minus_margin() -> None:
    candidates = {"q": {"a": 9.0, "b": 8.0, "c": 7.0, "d": 6.0}}
    qrels = {"q": {"p1": 1, "p2": 2, "c": 0}}
    # reference = min positive score = min(2.0, 3.0) = 2.0; margin 0.5 -> drop if > 1.5
    guard = {"q": {"p1": 2.0, "p2": 3.0, "a": 2.5, "b": 1.5, "c": 1.6, "d": -1.0}}
    result = drop_false_negatives(candidates, guard, qrels, margin=0.5)
    assert result.dropped == {"q": ["a", "c"]}  # b sits exactly at the threshold: kept
    assert result.kept == {"q": {"b": 8.0, "d": 6.0}}
    assert result.num_dropped == 2
    # margin 0: only candidates above the weakest positive go
    assert drop_false_negatives(candidates, guard, qrels).dropped == {"q": ["a"]}


def test_guard_leaves_relevant_candidates_and_warns_on_unguarded_queries() -> None:
    candidates = {"q": {"p": 1.0, "a": 0.5}, "lonely": {"x": 1.0}}
    guard = {"q": {"p": 1.0, "a": 0.0}, "lonely": {"x": 5.0}}
    with pytest.warns(DataWarning, match=r"1 query\(ies\) have no scored positive"):
        result = drop_false_negatives(candidates, guard, {"q": {"p": 1}})
    assert result.kept == {"q": {"p": 1.0, "a": 0.5}, "lonely": {"x": 1.0}}
    assert result.unguarded == ("lonely",)


def test_guard_validates_margin_and_coverage() -> None:
    with pytest.raises(ConfigError, match=r"margin must be a finite number >= 0, got -1"):
        drop_false_negatives({}, {}, {}, margin=-1)
    with pytest.raises(ConfigError, match=r"miss candidates \['a'\]"):
        drop_false_negatives({"q": {"a": 1.0}}, {"q": {"p": 1.0}}, {"q": {"p": 1}})


def test_guard_with_a_teacher_scorer() -> None:
    queries = {"q": "1"}
    texts = {"p": "5", "a": "6", "b": "4.5", "c": "1"}
    candidates = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
    # teacher scores = text values; ref = 5, margin 1 -> drop if > 4: a (6) and b (4.5)
    result = guard_false_negatives(
        queries, candidates, {"q": {"p": 1}}, texts, ProductScorer(), margin=1.0
    )
    assert result.dropped == {"q": ["a", "b"]}
    assert result.kept == {"q": {"c": 1.0}}
