from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from crossrank.data.types import Run
from crossrank.errors import ConfigError
from crossrank.protocols import Retriever
from crossrank.retrieval.fusion import HybridRetriever, interpolate, reciprocal_rank_fusion

RUN_A: Run = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
RUN_B: Run = {"q": {"c": 0.9, "a": 0.5, "d": 0.1}}


def test_rrf_two_three_doc_runs_by_hand() -> None:
    fused = reciprocal_rank_fusion([RUN_A, RUN_B], k=60)["q"]
    expected = {
        "a": 1 / 61 + 1 / 62,
        "c": 1 / 63 + 1 / 61,
        "b": 1 / 62,
        "d": 1 / 63,
    }
    assert list(fused) == ["a", "c", "b", "d"]
    assert fused == pytest.approx(expected)


def test_rrf_weights_and_top_k() -> None:
    fused = reciprocal_rank_fusion([RUN_A, RUN_B], k=0, weights=[1.0, 3.0], top_k=2)["q"]
    # k=0: a = 1/1 + 3/2 = 2.5; c = 1/3 + 3/1 = 3.333...; b = 1/2; d = 3/3 = 1
    assert fused == pytest.approx({"c": 1 / 3 + 3.0, "a": 2.5})
    assert list(fused) == ["c", "a"]


def test_rrf_ties_broken_by_doc_id_and_queries_unioned() -> None:
    fused = reciprocal_rank_fusion([{"q1": {"z": 1.0, "y": 1.0}}, {"q2": {"x": 5.0}}])
    assert list(fused["q1"]) == ["y", "z"]  # equal scores: rank by doc id
    assert fused["q1"]["y"] == pytest.approx(1 / 61)
    assert fused["q1"]["z"] == pytest.approx(1 / 62)
    assert fused["q2"] == pytest.approx({"x": 1 / 61})


def test_rrf_single_run_preserves_order() -> None:
    assert list(reciprocal_rank_fusion([RUN_B])["q"]) == ["c", "a", "d"]


def test_interpolate_zscore_by_hand() -> None:
    fused = interpolate([RUN_A, RUN_B], [0.5, 0.5], "zscore")["q"]
    za = (np.array([3.0, 2.0, 1.0]) - 2.0) / np.std([3.0, 2.0, 1.0])
    zb_values = np.array([0.9, 0.5, 0.1])
    zb = (zb_values - zb_values.mean()) / zb_values.std()
    # Missing docs take the run's minimum normalised score.
    expected = {
        "a": 0.5 * za[0] + 0.5 * zb[1],
        "b": 0.5 * za[1] + 0.5 * zb.min(),
        "c": 0.5 * za[2] + 0.5 * zb[0],
        "d": 0.5 * za.min() + 0.5 * zb[2],
    }
    assert fused == pytest.approx(expected)
    assert list(fused) == sorted(expected, key=lambda d: -expected[d])


def test_interpolate_minmax_by_hand() -> None:
    fused = interpolate([RUN_A, RUN_B], [0.7, 0.3], "minmax")["q"]
    # A: a=1, b=0.5, c=0 ; B: c=1, a=0.5, d=0 ; missing -> 0
    assert fused == pytest.approx({"a": 0.85, "b": 0.35, "c": 0.3, "d": 0.0})


def test_interpolate_none_uses_raw_scores_and_raw_minimum() -> None:
    fused = interpolate([RUN_A, RUN_B], [1.0, 1.0], "none")["q"]
    assert fused == pytest.approx({"a": 3.5, "b": 2.1, "c": 1.9, "d": 1.1})


@pytest.mark.parametrize("normalization", ["zscore", "minmax"])
def test_constant_scores_do_not_divide_by_zero(normalization: str) -> None:
    constant = {"q": {"a": 2.0, "b": 2.0}}
    fused = interpolate([constant, RUN_A], [1.0, 1.0], normalization)["q"]
    assert all(np.isfinite(list(fused.values())))
    single = interpolate([{"q": {"a": 7.0}}], [1.0], normalization)["q"]
    assert single == {"a": 0.0}


def test_interpolate_query_missing_from_a_run() -> None:
    fused = interpolate([RUN_A, {"other": {"x": 1.0}}], [1.0, 1.0], "minmax")
    assert fused["q"] == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0})
    assert fused["other"] == {"x": 0.0}


def test_interpolate_top_k() -> None:
    assert list(interpolate([RUN_A, RUN_B], [0.5, 0.5], top_k=1)["q"]) == ["a"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: interpolate([RUN_A], [1.0, 2.0]), "weight"),
        (lambda: interpolate([RUN_A], None), "weight"),
        (lambda: interpolate([RUN_A], [float("nan")]), "finite"),
        (lambda: interpolate([RUN_A], [1.0], "rank"), "normalization"),
        (lambda: interpolate([], []), "at least one run"),
        (lambda: interpolate([{"q": {"a": float("inf")}}], [1.0]), "finite"),
        (lambda: reciprocal_rank_fusion([RUN_A], k=-1), "k"),
        (lambda: reciprocal_rank_fusion([RUN_A], top_k=0), "top_k"),
        (lambda: reciprocal_rank_fusion([RUN_A], weights=[1.0, 1.0]), "weight"),
    ],
)
def test_validation(call: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call()


def test_inputs_are_not_mutated() -> None:
    a = {"q": dict(RUN_A["q"])}
    b = {"q": dict(RUN_B["q"])}
    reciprocal_rank_fusion([a, b])
    interpolate([a, b], [0.5, 0.5])
    assert a == RUN_A
    assert b == RUN_B


class FixedRetriever:
    """Returns a fixed run, cut to top_k, and records the depth it was asked for."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.requested: list[int] = []

    def retrieve(self, queries: Mapping[str, str], top_k: int) -> Run:
        self.requested.append(top_k)
        return {q: dict(list(self.run.get(q, {}).items())[:top_k]) for q in queries}


def test_hybrid_rrf_equals_fusing_runs() -> None:
    first, second = FixedRetriever(RUN_A), FixedRetriever(RUN_B)
    hybrid = HybridRetriever([first, second], depth=10)
    assert isinstance(hybrid, Retriever)
    run = hybrid.retrieve({"q": "text", "empty": "text"}, top_k=2)
    assert run["q"] == reciprocal_rank_fusion([RUN_A, RUN_B], top_k=2)["q"]
    assert run["empty"] == {}
    assert first.requested == second.requested == [10]


def test_hybrid_interpolate_default_weights() -> None:
    hybrid = HybridRetriever(
        [FixedRetriever(RUN_A), FixedRetriever(RUN_B)], "interpolate", normalization="minmax"
    )
    assert hybrid.weights == (0.5, 0.5)
    run = hybrid.retrieve({"q": "text"}, top_k=4)
    assert run["q"] == pytest.approx(interpolate([RUN_A, RUN_B], [0.5, 0.5], "minmax")["q"])


def test_hybrid_depth_at_least_top_k() -> None:
    retriever = FixedRetriever(RUN_A)
    HybridRetriever([retriever], depth=1).retrieve({"q": ""}, top_k=3)
    assert retriever.requested == [3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "max"}, "method"),
        ({"weights": [1.0]}, "weight"),
        ({"rrf_k": -5}, "k"),
        ({"normalization": "rank"}, "normalization"),
        ({"depth": 0}, "depth"),
    ],
)
def test_hybrid_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        HybridRetriever([FixedRetriever(RUN_A), FixedRetriever(RUN_B)], **kwargs)
    with pytest.raises(ConfigError, match="at least one retriever"):
        HybridRetriever([])
