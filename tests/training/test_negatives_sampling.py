"""NegativeMix and sample_negatives: quotas, no duplicates, no positives, determinism, fills."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from crossrank.errors import ConfigError, DataWarning
from crossrank.training.negatives import NegativeMix, sample_negatives

CORPUS = [f"d{i}" for i in range(1000)]
QRELS = {f"q{q}": {f"d{10 * q}": 1, f"d{10 * q + 1}": 2, f"d{10 * q + 2}": 0} for q in range(20)}


def run_for(offset: int, size: int = 60) -> dict[str, dict[str, float]]:
    # Candidate runs that include each query's positives near the top, as a real run would.
    return {
        qid: {f"d{(10 * q + offset + i) % 1000}": float(size - i) for i in range(size)}
        for q, qid in enumerate(QRELS)
    }


RUNS = {"bm25": run_for(0), "dense": run_for(5), "model": run_for(30)}


def test_mix_is_normalised_frozen_and_validated() -> None:
    mix = NegativeMix(bm25=2, dense=1, model=1, random=0)
    assert mix.weights() == {"bm25": 0.5, "dense": 0.25, "model": 0.25, "random": 0.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        mix.bm25 = 1.0  # type: ignore[misc]
    for bad, message in [
        ({"bm25": -1.0}, r"NegativeMix.bm25 must be a finite number >= 0, got -1.0"),
        ({"dense": float("nan")}, r"NegativeMix.dense"),
        ({"random": True}, r"NegativeMix.random"),
        ({"bm25": 0.0}, r"at least one weight > 0"),
    ]:
        with pytest.raises(ConfigError, match=message):
            NegativeMix(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 31])
def test_quotas_sum_to_n_and_follow_weights(n: int) -> None:
    quotas = NegativeMix(bm25=0.5, dense=0.25, model=0.25).quotas(n)
    assert sum(quotas.values()) == n
    assert quotas["random"] == 0
    for source, weight in [("bm25", 0.5), ("dense", 0.25), ("model", 0.25)]:
        assert abs(quotas[source] - weight * n) < 1


def test_sample_has_n_unique_non_relevant_negatives_per_query() -> None:
    mix = NegativeMix(bm25=0.5, dense=0.25, model=0.25, random=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough candidates everywhere: no warning
        sample = sample_negatives(QRELS, 8, mix, runs=RUNS, corpus_ids=CORPUS, seed=3)
    assert list(sample.negatives) == list(QRELS)
    for qid, negatives in sample.negatives.items():
        relevant = {d for d, grade in QRELS[qid].items() if grade > 0}
        assert len(negatives) == 8
        assert len(set(negatives)) == 8
        assert not relevant & set(negatives)
        origins = sample.origins[qid]
        assert [origins.count(s) for s in ("bm25", "dense", "model", "random")] == [4, 2, 2, 0]
    assert sample.short == {}
    assert not any(sample.borrowed.values())


def test_sources_draw_from_their_own_top_depth() -> None:
    mix = NegativeMix(bm25=1.0)
    sample = sample_negatives(QRELS, 5, mix, runs={"bm25": RUNS["bm25"]}, depth=10, seed=0)
    for qid, negatives in sample.negatives.items():
        top10 = list(RUNS["bm25"][qid])[:10]
        assert set(negatives) <= set(top10)


def test_judged_non_relevant_documents_may_be_negatives() -> None:
    qrels = {"q": {"p": 1, "n": 0}}
    sample = sample_negatives(qrels, 1, NegativeMix(bm25=1), runs={"bm25": {"q": {"p": 2, "n": 1}}})
    assert sample.negatives == {"q": ["n"]}


def test_sampling_is_deterministic_and_per_query() -> None:
    mix = NegativeMix(bm25=0.5, random=0.5)
    kwargs = {"runs": {"bm25": RUNS["bm25"]}, "corpus_ids": CORPUS}
    first = sample_negatives(QRELS, 6, mix, seed=7, **kwargs)
    assert sample_negatives(QRELS, 6, mix, seed=7, **kwargs) == first
    assert sample_negatives(QRELS, 6, mix, seed=8, **kwargs).negatives != first.negatives
    subset = {qid: QRELS[qid] for qid in ["q5", "q2"]}
    alone = sample_negatives(subset, 6, mix, seed=7, **kwargs)
    assert alone.negatives == {qid: first.negatives[qid] for qid in ["q5", "q2"]}


def test_short_source_is_filled_from_the_next_and_counted() -> None:
    # bm25 has only 2 usable candidates for q (the third is a positive): its deficit of 2
    # goes to dense, the next source in order.
    qrels = {"q": {"p": 1}}
    runs = {
        "bm25": {"q": {"p": 3.0, "a": 2.0, "b": 1.0}},
        "dense": {"q": {f"x{i}": 1.0 for i in range(9)}},
    }
    mix = NegativeMix(bm25=0.5, dense=0.5)
    with pytest.warns(DataWarning, match=r"later sources filled in \{'dense': 2\}"):
        sample = sample_negatives(qrels, 8, mix, runs=runs)
    assert sample.origins["q"].count("bm25") == 2
    assert sample.origins["q"].count("dense") == 6
    assert sample.borrowed == {"bm25": 0, "dense": 2, "model": 0, "random": 0}


def test_deficit_wraps_around_to_earlier_sources_and_random_fallback() -> None:
    qrels = {"q": {"p": 1}}
    runs = {"bm25": {"q": {f"b{i}": 1.0 for i in range(9)}}, "dense": {"q": {"x": 1.0}}}
    mix = NegativeMix(bm25=0.25, dense=0.75)
    with pytest.warns(DataWarning, match=r"later sources filled in \{'bm25': 2\}"):
        sample = sample_negatives(qrels, 4, mix, runs=runs)
    assert sample.origins["q"] == ["bm25", "dense", "bm25", "bm25"]
    # random with weight 0 is still a fallback when corpus ids are supplied
    with pytest.warns(DataWarning, match=r"'random': 2"):
        sample = sample_negatives(qrels, 3, NegativeMix(dense=1), runs=runs, corpus_ids=CORPUS)
    assert sample.origins["q"] == ["dense", "random", "random"]


def test_exhausted_sources_report_short_queries() -> None:
    qrels = {"q": {"p": 1}, "r": {"p": 1}}
    runs = {"bm25": {"q": {"a": 1.0, "p": 2.0}}}
    with pytest.warns(DataWarning, match=r"2 query\(ies\) got fewer than 3 negatives \(5 missing"):
        sample = sample_negatives(qrels, 3, NegativeMix(bm25=1), runs=runs)
    assert sample.negatives == {"q": ["a"], "r": []}
    assert sample.short == {"q": 2, "r": 3}


def test_random_negatives_from_a_large_corpus() -> None:
    corpus = [f"doc{i}" for i in range(200_000)]
    qrels = {f"q{i}": {f"doc{i}": 1} for i in range(50)}
    sample = sample_negatives(qrels, 16, NegativeMix(bm25=0, random=1), corpus_ids=corpus, seed=1)
    for qid, negatives in sample.negatives.items():
        assert len(set(negatives)) == 16
        assert f"doc{qid[1:]}" not in negatives


def test_random_on_a_tiny_corpus_excludes_positives() -> None:
    sample = sample_negatives({"q": {"a": 1}}, 2, NegativeMix(random=1), corpus_ids=["a", "b", "c"])
    assert sorted(sample.negatives["q"]) == ["b", "c"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mix": NegativeMix(dense=1.0)}, r"gives 'dense' weight 1 but no runs\['dense'\]"),
        ({"mix": NegativeMix(random=1.0)}, r"gives 'random' weight 1 but no corpus_ids"),
        ({"runs": {"sparse": {}}}, r"unknown sources \['sparse'\]"),
        ({"n": 0}, r"n must be > 0, got 0"),
        ({"seed": -1}, r"seed must be an integer >= 0"),
        ({"corpus_ids": "abc"}, r"not a string"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"n": 2, "mix": NegativeMix(bm25=1.0), "runs": {"bm25": {}}}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        sample_negatives(QRELS, **args)  # type: ignore[arg-type]
