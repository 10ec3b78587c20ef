"""Metrics must equal pytrec_eval's, with trec_eval -c handling of missing queries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval

from crossrank.errors import ConfigError
from crossrank.evaluation import EvalResult, evaluate, parse_metrics

# Our name -> (pytrec_eval measure request, pytrec_eval output key).
PYTREC_NAMES = {
    "nDCG": ("ndcg", "ndcg"),
    "nDCG@5": ("ndcg_cut.5", "ndcg_cut_5"),
    "nDCG@10": ("ndcg_cut.10", "ndcg_cut_10"),
    "AP": ("map", "map"),
    "AP@10": ("map_cut.10", "map_cut_10"),
    "RR": ("recip_rank", "recip_rank"),
    "P@1": ("P.1", "P_1"),
    "P@5": ("P.5", "P_5"),
    "R@10": ("recall.10", "recall_10"),
    "R@100": ("recall.100", "recall_100"),
}
RR_CUTOFFS = (1, 3, 10)


def random_case(seed: int) -> tuple[dict, dict]:
    """Graded qrels and a run whose scores take 5 values, so most ranks are ties."""
    rng = np.random.default_rng(seed)
    pool = [f"d{i:02d}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(25):
        qid = f"q{q}"
        judged = rng.choice(pool, size=15, replace=False)
        grades = rng.integers(0, 4, size=15)
        grades[0] = max(grades[0], 1)  # at least one relevant document
        qrels[qid] = {str(d): int(g) for d, g in zip(judged, grades, strict=True)}
        if q >= 22:
            continue  # judged but never retrieved: must count as 0
        docs = rng.choice(pool, size=40, replace=False)
        run[qid] = {str(d): float(rng.integers(0, 5)) / 4 for d in docs}
    return qrels, run


def truncate_like_trec_eval(run: dict, k: int) -> dict:
    """Top-k by score descending, ties by doc id descending (trec_eval's order)."""
    top = {}
    for qid, docs in run.items():
        ranked = sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        top[qid] = dict(ranked[:k])
    return top


def reference(qrels: dict, run: dict) -> dict[str, dict[str, float]]:
    """Per-query values straight from pytrec_eval, judged-but-missing queries as 0."""
    requests = {req for req, _ in PYTREC_NAMES.values()}
    raw = pytrec_eval.RelevanceEvaluator(qrels, requests).evaluate(run)
    ref = {
        name: {qid: raw.get(qid, {}).get(key, 0.0) for qid in qrels}
        for name, (_, key) in PYTREC_NAMES.items()
    }
    rr_evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    for k in RR_CUTOFFS:
        cut = rr_evaluator.evaluate(truncate_like_trec_eval(run, k))
        ref[f"RR@{k}"] = {qid: cut.get(qid, {}).get("recip_rank", 0.0) for qid in qrels}
    return ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_pytrec_eval_per_query_and_mean(seed: int) -> None:
    qrels, run = random_case(seed)
    names = [*PYTREC_NAMES, *(f"RR@{k}" for k in RR_CUTOFFS)]
    result = evaluate(run, qrels, names)
    expected = reference(qrels, run)
    assert result.metrics == tuple(names)
    for name in names:
        assert result.per_query[name].keys() == qrels.keys(), name
        for qid, value in expected[name].items():
            assert result.per_query[name][qid] == pytest.approx(value, abs=1e-9), (name, qid)
        mean = sum(expected[name].values()) / len(qrels)
        assert result.means[name] == pytest.approx(mean, abs=1e-9), name
    # The random case must actually exercise missing queries and non-trivial values.
    assert result.per_query["RR"]["q23"] == 0.0
    assert 0.0 < result.means["RR@3"] < result.means["RR"]


def test_ties_are_broken_by_doc_id_descending() -> None:
    run = {"q": {"a": 1.0, "b": 1.0, "c": 0.5}}
    assert evaluate(run, {"q": {"a": 1}}, ["RR"]).means["RR"] == 0.5
    assert evaluate(run, {"q": {"b": 1}}, ["RR", "RR@1"]).means == {"RR": 1.0, "RR@1": 1.0}
    assert evaluate(run, {"q": {"a": 1}}, ["RR@1"]).means["RR@1"] == 0.0


def test_graded_gains_in_ndcg_and_binary_threshold_elsewhere() -> None:
    qrels = {"q": {"a": 2, "b": 1, "c": 0}}
    run = {"q": {"c": 0.9, "b": 0.8, "a": 0.1}}
    result = evaluate(run, qrels, ["nDCG", "P@1", "RR", "R@2"])
    dcg = 0 / math.log2(2) + 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert result.means["nDCG"] == pytest.approx(dcg / idcg, abs=1e-12)
    assert result.means["P@1"] == 0.0  # grade 0 is not relevant
    assert result.means["RR"] == 0.5
    assert result.means["R@2"] == 0.5


def test_query_set_follows_trec_eval_c() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}, "q4": {"d": 1}}
    run = {"q1": {"a": 1.0}, "q4": {}, "q9": {"x": 1.0}}
    with pytest.warns(UserWarning) as caught:
        result = evaluate(run, qrels, ["AP"])
    messages = " ".join(str(w.message) for w in caught)
    assert "'q3'" in messages and "1 run queries" in messages and "'q9'" in messages
    # q2 (not retrieved) and q4 (empty ranking) count as 0; q3 has nothing relevant.
    assert result.per_query["AP"] == {"q1": 1.0, "q2": 0.0, "q4": 0.0}
    assert result.means["AP"] == pytest.approx(1 / 3)
    assert result.query_ids == ("q1", "q2", "q4")
    assert result.num_ignored_run_queries == 1


def test_numpy_scores_and_grades_are_accepted() -> None:
    run = {"q": {"a": np.float32(0.2), "b": np.float64(0.9), "c": np.int64(0)}}
    qrels = {"q": {"a": np.int64(1)}}
    assert evaluate(run, qrels, ["RR"]).means == {"RR": 0.5}


def test_metric_names_are_canonical() -> None:
    assert [str(m) for m in parse_metrics(["nDCG@10 ", "AP@100", "R@100", "P@5", "RR@10"])] == [
        "nDCG@10",
        "AP@100",
        "R@100",
        "P@5",
        "RR@10",
    ]
    assert [str(m) for m in parse_metrics(["MRR@10", "MAP"])] == ["RR@10", "AP"]  # aliases


@pytest.mark.parametrize(
    ("names", "needle"),
    [
        (["ndcg@10"], "'ndcg@10'"),
        (["Bpref"], "'Bpref'"),
        (["RR(rel=2)@10"], "'RR(rel=2)@10'"),
        (["nDCG@0"], "positive integer"),
        (["nDCG@2.5"], "positive integer"),
        (["P"], "needs a cutoff"),
        (["R"], "needs a cutoff"),
        (["RR", "RR"], "twice"),
        ("nDCG@10", "sequence"),
        ([], "non-empty"),
    ],
)
def test_bad_metric_names_raise(names: list[str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, names)
    assert needle in str(info.value)


def test_unknown_metric_lists_supported() -> None:
    with pytest.raises(ConfigError) as info:
        parse_metrics(["nDCG@10", "ERR@10"])
    assert "'ERR@10'" in str(info.value) and "nDCG@k" in str(info.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_score_names_query_and_doc(bad: float) -> None:
    run = {"q1": {"a": 1.0}, "q2": {"b": 0.5, "c": bad}}
    with pytest.raises(ConfigError, match=r"'q2'.*'c'"):
        evaluate(run, {"q1": {"a": 1}}, ["RR"])


@pytest.mark.parametrize("bad", ["0.5", None, True])
def test_non_numeric_score_raises(bad: object) -> None:
    with pytest.raises(ConfigError, match="'q1'"):
        evaluate({"q1": {"a": bad}}, {"q1": {"a": 1}}, ["RR"])


@pytest.mark.parametrize(
    ("run", "qrels", "needle"),
    [
        ({}, {"q": {"a": 1}}, "run is empty"),
        ({"q": {"a": 1.0}}, {}, "qrels are empty"),
        ({"q": {"a": 1.0}}, {"q": {"a": 0}}, "no relevant"),
        ({"q": {"a": 1.0}}, {"q": {"a": -1}}, "'q', doc 'a'"),
        ({"q": {"a": 1.0}}, {"q": {"a": 1.5}}, "int >= 0"),
        ({"q": {"a": 1.0}}, {"q": {"a": True}}, "int >= 0"),
    ],
)
def test_invalid_inputs_raise(run: dict, qrels: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        evaluate(run, qrels, ["RR"])
    assert needle in str(info.value)


def test_result_is_frozen() -> None:
    result = evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, ["RR"])
    assert isinstance(result, EvalResult)
    with pytest.raises(AttributeError):
        result.means = {}  # type: ignore[misc]
