"""Paired tests against scipy and exact enumeration; Holm against hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from crossrank.errors import ConfigError
from crossrank.evaluation import (
    EvalResult,
    bootstrap_test,
    compare,
    compare_results,
    holm,
    paired_t_test,
    randomization_test,
)
from crossrank.evaluation import significance as significance_module

DIFFS = np.array([0.30, -0.10, 0.25, 0.05, 0.40, -0.20])
BOOT_DIFFS = np.array([0.30, -0.10, 0.25, -0.15, 0.05])  # 5^5 resamples to enumerate


def exact_randomization_p(d: np.ndarray) -> float:
    """Share of all 2^n sign vectors whose |mean| reaches the observed |mean|."""
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=d.size)))
    return float(np.mean(np.abs(signs @ d) / d.size >= abs(d.mean()) - 1e-12))


def exact_bootstrap_p(d: np.ndarray) -> float:
    """Share of all n^n resamples of the centred differences reaching |mean|."""
    centred = d - d.mean()
    idx = np.array(list(itertools.product(range(d.size), repeat=d.size)))
    return float(np.mean(np.abs(centred[idx].mean(axis=1)) >= abs(d.mean()) - 1e-12))


def systems(seed: int = 0, n: int = 30) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.6, size=n)
    qids = [f"q{i}" for i in range(n)]
    return {
        "bm25": dict(zip(qids, base.tolist(), strict=True)),
        "same": dict(zip(qids, base.tolist(), strict=True)),
        "better": dict(zip(qids, (base + 0.3 + rng.normal(0, 0.05, n)).tolist(), strict=True)),
        "noisy": dict(zip(qids, (base + rng.normal(0, 0.2, n)).tolist(), strict=True)),
    }


def test_t_test_equals_scipy_ttest_rel() -> None:
    per_query = systems()
    results = compare(per_query, "bm25", metric="nDCG@10", test="t")
    base = np.array(list(per_query["bm25"].values()))
    for result in results:
        values = np.array(list(per_query[result.system].values()))
        if result.system == "same":
            assert result.p_value == 1.0  # scipy gives nan for all-zero differences
            continue
        expected = stats.ttest_rel(values, base).pvalue
        assert result.p_value == pytest.approx(expected, rel=1e-12)
        assert result.mean_diff == pytest.approx(float(np.mean(values - base)), abs=1e-12)
    assert paired_t_test(DIFFS) == pytest.approx(stats.ttest_rel(DIFFS, 0 * DIFFS).pvalue)


def test_t_test_zero_variance() -> None:
    assert paired_t_test([0.0, 0.0, 0.0]) == 1.0
    assert paired_t_test([0.2, 0.2, 0.2]) == 0.0


@pytest.mark.parametrize("test", ["t", "randomization", "bootstrap"])
def test_identical_systems_give_p_one_and_better_system_small_p(test: str) -> None:
    results = {r.system: r for r in compare(systems(), "bm25", metric="AP", test=test)}
    assert results["same"].p_value == 1.0
    assert results["same"].p_adjusted == 1.0
    assert results["better"].p_value < 0.001
    assert results["better"].significant()
    assert results["better"].mean_diff > 0.25
    assert results["noisy"].p_value > results["better"].p_value


def test_randomization_matches_exact_enumeration() -> None:
    exact = exact_randomization_p(DIFFS)
    estimate = randomization_test(DIFFS, n_samples=40_000, seed=3)
    # Monte Carlo standard error is about sqrt(p(1-p)/n) ~ 0.0025 here.
    assert estimate == pytest.approx(exact, abs=0.01)
    assert 0.05 < exact < 0.95  # a case where the test is not trivially 0 or 1


def test_bootstrap_matches_exact_enumeration() -> None:
    exact = exact_bootstrap_p(BOOT_DIFFS)
    estimate = bootstrap_test(BOOT_DIFFS, n_samples=40_000, seed=3)
    assert estimate == pytest.approx(exact, abs=0.01)
    assert 0.05 < exact < 0.95


def test_chunking_keeps_sample_count_and_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    # 7 rows per chunk forces thousands of chunks, including a ragged last one.
    monkeypatch.setattr(significance_module, "_CHUNK_ELEMENTS", 7 * DIFFS.size)
    assert sum(significance_module._chunk_rows(10_001, DIFFS.size)) == 10_001
    exact = exact_randomization_p(DIFFS)
    assert randomization_test(DIFFS, n_samples=20_001, seed=1) == pytest.approx(exact, abs=0.015)
    exact_boot = exact_bootstrap_p(BOOT_DIFFS)
    assert bootstrap_test(BOOT_DIFFS, n_samples=20_001, seed=1) == pytest.approx(
        exact_boot, abs=0.015
    )


@pytest.mark.parametrize("fn", [randomization_test, bootstrap_test])
def test_monte_carlo_is_seeded(fn) -> None:
    assert fn(DIFFS, n_samples=2_000, seed=7) == fn(DIFFS, n_samples=2_000, seed=7)
    p_values = {fn(DIFFS, n_samples=2_000, seed=s) for s in range(5)}
    assert len(p_values) > 1
    # (hits + 1) / (n + 1): never 0, and on the n+1 grid.
    p = fn(DIFFS, n_samples=99, seed=0)
    assert p > 0 and round(p * 100, 9).is_integer()


def test_holm_hand_computed() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # Sorted: 0.01*4=0.04, 0.04*3=0.12, 0.2*2=0.4, 0.5*1=0.5 (already monotone).
    assert holm([0.5, 0.2, 0.01, 0.04]) == pytest.approx([0.5, 0.4, 0.04, 0.12])
    assert holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])  # clipped at 1
    assert holm([0.02]) == pytest.approx([0.02])
    assert holm([]) == []


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [-0.1], [1.5], [[0.1, 0.2]]])
def test_holm_rejects_invalid_p_values(bad: list) -> None:
    with pytest.raises(ConfigError):
        holm(bad)


def test_compare_applies_holm_across_systems() -> None:
    results = compare(systems(), "bm25", metric="RR@10", test="randomization", n_samples=500)
    assert [r.system for r in results] == ["same", "better", "noisy"]
    assert [r.p_adjusted for r in results] == pytest.approx(holm([r.p_value for r in results]))
    assert {(r.metric, r.baseline, r.test, r.num_queries) for r in results} == {
        ("RR@10", "bm25", "randomization", 30)
    }


def test_compare_is_independent_of_other_systems() -> None:
    per_query = systems()
    alone = compare(
        {k: per_query[k] for k in ("bm25", "noisy")}, "bm25", metric="m", test="bootstrap"
    )
    together = {r.system: r for r in compare(per_query, "bm25", metric="m", test="bootstrap")}
    assert alone[0].p_value == together["noisy"].p_value


def test_compare_aligns_by_query_id_not_order() -> None:
    per_query = systems(n=10)
    shuffled = dict(reversed(list(per_query["better"].items())))
    a = compare({"bm25": per_query["bm25"], "x": per_query["better"]}, "bm25", metric="m")
    b = compare({"bm25": per_query["bm25"], "x": shuffled}, "bm25", metric="m")
    assert a[0].p_value == b[0].p_value


def test_compare_names_mismatched_queries() -> None:
    per_query = systems(n=5)
    del per_query["noisy"]["q3"]
    with pytest.raises(ConfigError, match=r"'noisy'.*'q3'"):
        compare(per_query, "bm25", metric="m")
    per_query = systems(n=5)
    per_query["noisy"]["q9"] = 0.1
    with pytest.raises(ConfigError, match=r"'noisy'.*'q9'"):
        compare(per_query, "bm25", metric="m")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"baseline": "nope"}, "'nope'"),
        ({"test": "wilcoxon"}, "'wilcoxon'"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 10.5}, "n_samples"),
    ],
)
def test_compare_rejects_bad_arguments(kwargs: dict, needle: str) -> None:
    args = {"baseline": "bm25", "metric": "m", **kwargs}
    with pytest.raises(ConfigError) as info:
        compare(systems(n=5), **args)
    assert needle in str(info.value)


def test_compare_needs_two_queries_and_finite_values() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        compare({"a": {"q": 0.1}, "b": {"q": 0.2}}, "a", metric="m")
    with pytest.raises(ConfigError, match="'q2'"):
        compare(
            {"a": {"q1": 0.1, "q2": 0.2}, "b": {"q1": 0.1, "q2": float("nan")}}, "a", metric="m"
        )


def test_compare_results_runs_every_metric() -> None:
    per_query = systems(n=8)
    results = {
        name: EvalResult(
            means={"AP": float(np.mean(list(v.values()))), "RR": 0.5},
            per_query={"AP": v, "RR": dict.fromkeys(v, 0.5)},
        )
        for name, v in per_query.items()
    }
    out = compare_results(results, "bm25", test="t")
    assert [(r.metric, r.system) for r in out] == [
        (m, s) for m in ("AP", "RR") for s in ("same", "better", "noisy")
    ]
    assert all(r.p_value == 1.0 for r in out if r.metric == "RR")
    with pytest.raises(ConfigError, match="'nDCG@10'"):
        compare_results(results, "bm25", metrics=["nDCG@10"])
