"""Percentile bootstrap intervals: coverage of the mean, width, determinism, validation."""

from __future__ import annotations

import numpy as np
import pytest

from crossrank.errors import ConfigError
from crossrank.evaluation import EvalResult
from crossrank.evaluation import confidence as confidence_module
from crossrank.evaluation.confidence import ConfidenceInterval, bootstrap_ci, confidence_intervals


def per_query(n: int, seed: int = 0) -> dict[str, float]:
    values = np.random.default_rng(seed).beta(2.0, 3.0, size=n)
    return {f"q{i}": float(v) for i, v in enumerate(values)}


def test_interval_contains_mean_and_matches_normal_approximation() -> None:
    values = per_query(200)
    ci = bootstrap_ci(values, n_samples=4000)
    array = np.array(list(values.values()))
    assert ci.mean == pytest.approx(array.mean())
    assert ci.low < ci.mean < ci.high
    assert (ci.confidence, ci.n_queries) == (0.95, 200)
    # For a mean of 200 values the bootstrap interval is close to mean +- 1.96 * SE.
    half_width = 1.96 * array.std(ddof=0) / np.sqrt(array.size)
    assert ci.width == pytest.approx(2 * half_width, rel=0.1)


def test_width_shrinks_with_more_queries_and_grows_with_confidence() -> None:
    narrow = bootstrap_ci(per_query(400), n_samples=2000)
    wide = bootstrap_ci(per_query(25), n_samples=2000)
    assert narrow.width < 0.6 * wide.width
    ninety = bootstrap_ci(per_query(100), n_samples=2000, confidence=0.9)
    ninety_nine = bootstrap_ci(per_query(100), n_samples=2000, confidence=0.99)
    assert ninety.width < ninety_nine.width


def test_deterministic_with_seed() -> None:
    values = per_query(50)
    assert bootstrap_ci(values, n_samples=1000, seed=3) == bootstrap_ci(
        values, n_samples=1000, seed=3
    )
    assert bootstrap_ci(values, n_samples=1000, seed=3) != bootstrap_ci(
        values, n_samples=1000, seed=4
    )


def test_constant_values_give_zero_width() -> None:
    ci = bootstrap_ci({f"q{i}": 0.3 for i in range(20)}, n_samples=500)
    assert ci.low == ci.high
    assert ci.width == 0.0
    assert ci.mean == pytest.approx(0.3) and ci.low == pytest.approx(0.3)


def test_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    values = per_query(30)
    whole = bootstrap_ci(values, n_samples=1000)
    monkeypatch.setattr(confidence_module, "_CHUNK_ELEMENTS", 30 * 7)  # 7 samples per chunk
    chunked = bootstrap_ci(values, n_samples=1000)
    assert chunked == whole


def test_confidence_intervals_per_metric() -> None:
    ndcg, rr = per_query(40, seed=1), per_query(40, seed=2)
    result = EvalResult(
        means={"nDCG@10": float(np.mean(list(ndcg.values()))), "RR": 0.0},
        per_query={"nDCG@10": ndcg, "RR": rr},
    )
    cis = confidence_intervals(result, n_samples=1000, seed=5)
    assert list(cis) == ["nDCG@10", "RR"]
    assert cis["nDCG@10"] == bootstrap_ci(ndcg, n_samples=1000, seed=5)
    assert isinstance(cis["RR"], ConfidenceInterval)
    assert cis["nDCG@10"].mean == pytest.approx(result.means["nDCG@10"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"per_query": {"q1": 0.5}}, "at least 2 queries"),
        ({"per_query": {"q1": 0.5, "q2": float("nan")}}, "'q2' is not finite"),
        ({"per_query": {"q1": 0.5, "q2": "x"}}, "real numbers"),
        ({"per_query": [0.1, 0.2]}, "must map query id"),
        ({"per_query": {"q1": 0.1, "q2": 0.2}, "n_samples": 0}, "n_samples must be > 0"),
        ({"per_query": {"q1": 0.1, "q2": 0.2}, "n_samples": 10.0}, "n_samples must be an int"),
        ({"per_query": {"q1": 0.1, "q2": 0.2}, "confidence": 1.0}, "confidence"),
        ({"per_query": {"q1": 0.1, "q2": 0.2}, "confidence": 95}, "confidence"),
    ],
)
def test_invalid_arguments_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        bootstrap_ci(**kwargs)  # type: ignore[arg-type]
