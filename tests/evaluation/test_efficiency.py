"""Latency statistics, timed calls, peak memory, model size and the energy estimate."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.evaluation.efficiency import (
    DEFAULT_CPU_WATTS_PER_CORE,
    LatencyResult,
    LatencyStats,
    PowerModel,
    default_warmup,
    measure_call,
    measure_latency,
    measure_throughput,
    model_size,
    scorer_calls,
)


class LengthScorer:
    """Scores a pair by document length; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, queries: list[str], docs: list[str]) -> np.ndarray:
        self.calls += 1
        return np.array([len(d) for d in docs], dtype=np.float32)


def test_latency_stats_match_numpy_percentiles() -> None:
    seconds = np.random.default_rng(0).exponential(0.02, size=101)
    stats = LatencyStats.from_seconds(seconds)
    ms = seconds * 1000
    assert stats.n == 101
    assert stats.mean_ms == pytest.approx(ms.mean())
    assert stats.p50_ms == pytest.approx(np.percentile(ms, 50))
    assert stats.p95_ms == pytest.approx(np.percentile(ms, 95))
    assert stats.p99_ms == pytest.approx(np.percentile(ms, 99))
    assert stats.max_ms == pytest.approx(ms.max())
    assert stats.p50_ms <= stats.p95_ms <= stats.p99_ms <= stats.max_ms


@pytest.mark.parametrize("bad", [[], [-0.1], [float("nan")], [[0.1, 0.2]]])
def test_latency_stats_reject_bad_input(bad: list[float]) -> None:
    with pytest.raises(ConfigError, match="latencies"):
        LatencyStats.from_seconds(bad)


@pytest.mark.parametrize("watts", [0.0, -1.0, float("nan"), float("inf"), True])
def test_power_model_rejects_bad_watts(watts: float) -> None:
    with pytest.raises(ConfigError, match="cpu_watts_per_core"):
        PowerModel(cpu_watts_per_core=watts)


def test_energy_is_seconds_times_watts() -> None:
    energy = PowerModel(cpu_watts_per_core=3.0, gpu_watts=200.0).energy(2.5, 0.5)
    assert energy.cpu_joules == pytest.approx(7.5)
    assert energy.gpu_joules == pytest.approx(100.0)
    assert energy.total_joules == pytest.approx(107.5)
    assert PowerModel().cpu_watts_per_core == DEFAULT_CPU_WATTS_PER_CORE


def test_measure_latency_times_each_call_after_warmup() -> None:
    calls: list[int] = []

    def make(i: int, pause: float):
        def call() -> None:
            calls.append(i)
            time.sleep(pause)

        return call

    result = measure_latency([make(0, 0.02), make(1, 0.0)], pairs=[4, 2], warmup=3)
    assert calls == [0, 1, 0, 0, 1]  # three warm-ups cycling through the calls, then each once
    assert result.wall_s[0] >= 0.02 > result.wall_s[1]
    assert result.per_pair is not None
    assert result.per_pair.max_ms == pytest.approx(
        max(result.wall_s[0] / 4, result.wall_s[1] / 2) * 1000
    )
    assert result.gpu_s == (0.0, 0.0)
    assert result.queries_per_s == pytest.approx(2 / sum(result.wall_s))


def test_measure_latency_counts_cpu_time_of_busy_work() -> None:
    def busy() -> None:
        deadline = time.process_time() + 0.03
        while time.process_time() < deadline:
            pass

    result = measure_latency([busy], warmup=0)
    assert result.cpu_s[0] >= 0.03
    assert result.per_pair is None
    energy = result.energy_per_query(PowerModel(cpu_watts_per_core=10.0))
    assert energy.cpu_joules == pytest.approx(10.0 * result.cpu_s[0])


def test_default_warmup_is_two_calls_on_cpu_and_a_full_pass_on_cuda() -> None:
    assert default_warmup("cpu", 50) == 2
    assert default_warmup("cuda:1", 50) == 50
    calls: list[int] = []
    measure_latency([lambda: calls.append(1)] * 5)
    assert len(calls) == 2 + 5


def test_measure_latency_validates_arguments() -> None:
    with pytest.raises(ConfigError, match="at least one call"):
        measure_latency([])
    with pytest.raises(ConfigError, match="pair counts"):
        measure_latency([lambda: None], pairs=[1, 2])
    with pytest.raises(ConfigError, match="warmup"):
        measure_latency([lambda: None], warmup=-1)


def test_latency_results_add_call_by_call() -> None:
    a = LatencyResult((0.5, 1.0), (0.25, 0.5), (0.0, 0.0))
    b = LatencyResult((0.5, 2.0), (0.5, 0.5), (0.0, 0.0), (3, 4))
    total = a.plus(b)
    assert total.wall_s == (1.0, 3.0)
    assert total.cpu_s == (0.75, 1.0)
    assert total.pairs == (3, 4)
    with pytest.raises(ConfigError, match="cannot add"):
        a.plus(LatencyResult((1.0,), (1.0,), (0.0,)))


def test_measure_call_reports_peak_rss_of_the_call() -> None:
    size = 64 * 2**20

    def allocate() -> int:
        block = np.ones(size // 8)  # touched pages count towards RSS
        return int(block.size)

    _, cost = measure_call(allocate)
    assert cost.wall_s > 0 and cost.cpu_s >= 0
    assert cost.gpu_s == 0.0 and cost.gpu_peak_bytes is None
    if cost.rss_method != "VmHWM since reset":
        pytest.skip(f"peak RSS cannot be reset here ({cost.rss_method})")
    assert cost.peak_rss_bytes - cost.rss_before_bytes >= 0.9 * size


def test_measure_throughput_scores_every_pair_in_one_call() -> None:
    scorer = LengthScorer()
    scores, result = measure_throughput(scorer, ["q"] * 3, ["a", "bb", "ccc"],
                                        power=PowerModel(cpu_watts_per_core=2.0))  # fmt: skip
    assert scores.tolist() == [1.0, 2.0, 3.0]
    assert scorer.calls == 1
    assert result.pairs == 3
    assert result.pairs_per_s == pytest.approx(3 / result.cost.wall_s)
    assert result.energy.cpu_joules == pytest.approx(2.0 * result.cost.cpu_s)
    assert result.joules_per_pair == pytest.approx(result.energy.total_joules / 3)


def test_measure_throughput_rejects_bad_input_and_output() -> None:
    with pytest.raises(ConfigError, match="aligned"):
        measure_throughput(LengthScorer(), ["q"], [])

    class Wrong:
        def score(self, queries: list[str], docs: list[str]) -> np.ndarray:
            return np.zeros(len(docs) + 1)

    with pytest.raises(ConfigError, match="shape"):
        measure_throughput(Wrong(), ["q"], ["d"])


def test_scorer_calls_make_one_call_per_group() -> None:
    scorer = LengthScorer()
    calls = scorer_calls(scorer, [(["q"], ["ab"]), (["q", "q"], ["a", "abc"])])
    assert [c().tolist() for c in calls] == [[2.0], [1.0, 3.0]]
    assert scorer.calls == 2


def test_model_size_counts_parameters_and_files(tmp_path: Path) -> None:
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1).half())
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"x" * 123)
    size = model_size(module, [weights])
    assert size.parameters == 4 * 3 + 3 + 3 + 1
    assert size.parameter_bytes == (4 * 3 + 3) * 4 + (3 + 1) * 2
    assert size.disk_bytes == 123
    assert size.files == ("model.bin",)
    with pytest.raises(ConfigError, match="do not exist"):
        model_size(module, [tmp_path / "missing.bin"])
    assert math.isfinite(size.parameter_bytes)
