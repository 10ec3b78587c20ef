"""Efficiency of real scoring calls: latency percentiles, throughput, peak memory, model size
and an energy estimate.

Definitions (every figure comes from timing real calls; nothing is extrapolated):

* **Per-query latency**: wall time of one call that scores one query's candidates (or
  retrieves for one query). **Per-pair latency** of that query: its latency divided by its
  number of pairs. Percentiles (p50/p95/p99, linear interpolation) are over queries.
  Untimed warm-up calls come first so one-off costs are not counted as latency: two on CPU
  (graph optimisation, thread-pool start, allocator growth), a full pass over the calls on
  CUDA, where each new input shape pays for kernel selection once (:func:`default_warmup`).
* **Throughput**: pairs divided by the wall time of one bulk call over every pair.
* **Peak memory**: resident set size. On Linux the kernel's high-water mark (``VmHWM``) is
  reset through ``/proc/self/clear_refs`` before the measured call, so the peak belongs to
  that call (model, data and interpreter included); elsewhere ``ru_maxrss``, the process
  lifetime peak, is reported and labelled as such. On CUDA, ``torch.cuda.max_memory_allocated``
  after a reset. ``tracemalloc`` would miss torch's and ONNX Runtime's native allocations.
* **Energy** (an estimate, not a measurement): process CPU seconds (``time.process_time``,
  every thread) x watts per busy core, plus GPU seconds x GPU board power. GPU seconds are
  the wall time of calls on a CUDA device, an upper bound of the GPU's busy time, so the GPU
  term is an upper bound too. Memory, idle power and data-centre overhead (PUE) are left out.

Example:
    >>> stats = LatencyStats.from_seconds([0.010, 0.020, 0.030])
    >>> (stats.p50_ms, stats.n)
    (20.0, 3)
    >>> PowerModel(cpu_watts_per_core=5.0).energy(cpu_seconds=2.0, gpu_seconds=0.0).total_joules
    10.0
"""

from __future__ import annotations

import math
import re
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from crossrank.errors import ConfigError
from crossrank.protocols import Scorer

__all__ = [
    "DEFAULT_CPU_WATTS_PER_CORE",
    "DEFAULT_GPU_WATTS",
    "CallCost",
    "EnergyEstimate",
    "LatencyResult",
    "LatencyStats",
    "ModelSize",
    "PowerModel",
    "ThroughputResult",
    "default_warmup",
    "measure_call",
    "measure_latency",
    "measure_throughput",
    "model_size",
    "scorer_calls",
]

# Watts drawn by one fully busy CPU core: AMD EPYC 7763 (Zen 3, the family of this project's
# CPU box), 280 W default TDP / 64 cores = 4.375 W. Per-core TDP is the core power model of
# the Green Algorithms method (Lannelongue et al., Advanced Science 2021). Override it with
# the power figure of your own CPU.
DEFAULT_CPU_WATTS_PER_CORE = 4.375
# Board power of one GPU: NVIDIA H100 SXM5 and H200 SXM maximum TDP, 700 W. Override it.
DEFAULT_GPU_WATTS = 700.0

_T = TypeVar("_T")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True, slots=True)
class PowerModel:
    """Documented power figures used to turn measured CPU/GPU seconds into joules."""

    cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE
    gpu_watts: float = DEFAULT_GPU_WATTS

    def __post_init__(self) -> None:
        for name in ("cpu_watts_per_core", "gpu_watts"):
            value = getattr(self, name)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a finite number of watts > 0, got {value!r}")

    def energy(self, cpu_seconds: float, gpu_seconds: float) -> EnergyEstimate:
        """Joules of ``cpu_seconds`` busy-core seconds and ``gpu_seconds`` GPU seconds."""
        return EnergyEstimate(
            cpu_seconds=cpu_seconds,
            gpu_seconds=gpu_seconds,
            cpu_joules=cpu_seconds * self.cpu_watts_per_core,
            gpu_joules=gpu_seconds * self.gpu_watts,
        )


@dataclass(frozen=True, slots=True)
class EnergyEstimate:
    """CPU and GPU seconds and the joules :class:`PowerModel` assigns to them."""

    cpu_seconds: float
    gpu_seconds: float
    cpu_joules: float
    gpu_joules: float

    @property
    def total_joules(self) -> float:
        return self.cpu_joules + self.gpu_joules


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Mean and percentiles (linear interpolation) of latencies, in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def from_seconds(cls, seconds: Sequence[float] | np.ndarray) -> LatencyStats:
        """Statistics of latencies given in seconds.

        >>> LatencyStats.from_seconds([0.001] * 4).p99_ms
        1.0
        """
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        if ms.ndim != 1 or ms.size == 0 or not np.isfinite(ms).all() or (ms < 0).any():
            raise ConfigError("latencies must be a non-empty 1-D sequence of finite seconds >= 0")
        p50, p95, p99 = np.percentile(ms, [50, 95, 99]).tolist()
        return cls(int(ms.size), float(ms.mean()), p50, p95, p99, float(ms.max()))


@dataclass(frozen=True, slots=True)
class CallCost:
    """Wall, CPU and GPU seconds and peak memory of one measured call.

    ``rss_method`` says what ``peak_rss_bytes`` is (see the module docstring);
    ``gpu_peak_bytes`` is None off CUDA.
    """

    wall_s: float
    cpu_s: float
    gpu_s: float
    rss_before_bytes: int
    peak_rss_bytes: int
    rss_method: str
    gpu_peak_bytes: int | None


@dataclass(frozen=True, slots=True)
class ThroughputResult:
    """One bulk scoring call: pairs/s, its cost and its estimated energy."""

    pairs: int
    cost: CallCost
    energy: EnergyEstimate

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.cost.wall_s if self.cost.wall_s > 0 else 0.0

    @property
    def joules_per_pair(self) -> float:
        return self.energy.total_joules / self.pairs if self.pairs else 0.0


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Per-call wall and CPU seconds of sequential calls (one call per query).

    ``pairs[i]`` is the number of pairs call i scored (empty when calls are not pair
    scoring, e.g. first-stage retrieval); ``gpu_s`` is each call's wall time on CUDA, else 0.
    """

    wall_s: tuple[float, ...]
    cpu_s: tuple[float, ...]
    gpu_s: tuple[float, ...]
    pairs: tuple[int, ...] = ()

    @property
    def per_query(self) -> LatencyStats:
        return LatencyStats.from_seconds(self.wall_s)

    @property
    def per_pair(self) -> LatencyStats | None:
        """Per-query latency divided by that query's pairs (None without pair counts)."""
        if not self.pairs:
            return None
        counts = np.asarray(self.pairs, dtype=np.float64)
        return LatencyStats.from_seconds(np.asarray(self.wall_s) / np.maximum(counts, 1.0))

    @property
    def queries_per_s(self) -> float:
        """Sequential throughput: calls divided by their total wall time."""
        total = math.fsum(self.wall_s)
        return len(self.wall_s) / total if total > 0 else 0.0

    def energy_per_query(self, power: PowerModel) -> EnergyEstimate:
        """Mean estimated energy of one call."""
        n = len(self.wall_s)
        return power.energy(math.fsum(self.cpu_s) / n, math.fsum(self.gpu_s) / n)

    def plus(self, other: LatencyResult) -> LatencyResult:
        """Call-by-call sum, e.g. first-stage plus re-ranking latency of the same queries.

        >>> a = LatencyResult((0.25, 0.5), (0.25, 0.5), (0.0, 0.0))
        >>> a.plus(LatencyResult((0.25, 0.5), (0.25, 0.5), (0.0, 0.0), (5, 5))).wall_s
        (0.5, 1.0)
        """
        if len(self.wall_s) != len(other.wall_s):
            raise ConfigError(
                f"cannot add latencies of {len(self.wall_s)} and {len(other.wall_s)} calls"
            )

        def add(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(x + y for x, y in zip(a, b, strict=True))

        return LatencyResult(
            add(self.wall_s, other.wall_s),
            add(self.cpu_s, other.cpu_s),
            add(self.gpu_s, other.gpu_s),
            self.pairs or other.pairs,
        )


@dataclass(frozen=True, slots=True)
class ModelSize:
    """Parameter count, in-memory parameter bytes and on-disk bytes of the files given."""

    parameters: int
    parameter_bytes: int
    disk_bytes: int
    files: tuple[str, ...]


def model_size(module: torch.nn.Module, files: Sequence[str | Path]) -> ModelSize:
    """Size of ``module``'s parameters and of the weight ``files`` a backend loads.

    >>> model_size(torch.nn.Linear(3, 2), []).parameter_bytes  # 8 float32 values
    32
    """
    params = list(module.parameters())
    paths = [Path(f) for f in files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"model files do not exist: {missing}")
    return ModelSize(
        parameters=sum(p.numel() for p in params),
        parameter_bytes=sum(p.numel() * p.element_size() for p in params),
        disk_bytes=sum(p.stat().st_size for p in paths),
        files=tuple(p.name for p in paths),
    )


def measure_call(fn: Callable[[], _T], device: str = "cpu") -> tuple[_T, CallCost]:
    """Run ``fn`` once; return its result and its :class:`CallCost`."""
    on_gpu = _on_cuda(device)
    reset = _reset_peak_rss()
    rss_before = _status_bytes("VmRSS") or 0
    if on_gpu:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = fn()
    if on_gpu:
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak, method = _peak_rss(reset)
    gpu_peak = int(torch.cuda.max_memory_allocated(device)) if on_gpu else None
    cost = CallCost(wall, cpu, wall if on_gpu else 0.0, rss_before, peak, method, gpu_peak)
    return result, cost


def measure_throughput(
    scorer: Scorer,
    queries: Sequence[str],
    docs: Sequence[str],
    *,
    device: str = "cpu",
    power: PowerModel | None = None,
) -> tuple[np.ndarray, ThroughputResult]:
    """Score every aligned pair in one call; return the scores and the call's throughput.

    >>> class Length:
    ...     def score(self, qs, ds): return np.array([len(d) for d in ds], dtype=np.float32)
    >>> scores, result = measure_throughput(Length(), ["q", "q"], ["ab", "abc"])
    >>> (scores.tolist(), result.pairs)
    ([2.0, 3.0], 2)
    """
    if len(queries) != len(docs) or not queries:
        raise ConfigError(f"need aligned, non-empty pairs, got {len(queries)} and {len(docs)}")
    power = power or PowerModel()
    scores, cost = measure_call(lambda: scorer.score(queries, docs), device)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(queries),):
        raise ConfigError(f"scorer returned shape {scores.shape} for {len(queries)} pairs")
    energy = power.energy(cost.cpu_s, cost.gpu_s)
    return scores, ThroughputResult(len(queries), cost, energy)


def scorer_calls(
    scorer: Scorer, groups: Sequence[tuple[Sequence[str], Sequence[str]]]
) -> list[Callable[[], object]]:
    """One call per ``(queries, docs)`` group, e.g. one query's candidates per call."""
    return [lambda q=q, d=d: scorer.score(q, d) for q, d in groups]


def default_warmup(device: str, n_calls: int) -> int:
    """Untimed warm-up calls before timing: 2 on CPU, one full pass (``n_calls``) on CUDA.

    >>> (default_warmup("cpu", 20), default_warmup("cuda", 20))
    (2, 20)
    """
    return n_calls if _on_cuda(device) else 2


def measure_latency(
    calls: Sequence[Callable[[], object]],
    *,
    pairs: Sequence[int] = (),
    device: str = "cpu",
    warmup: int | None = None,
) -> LatencyResult:
    """Time each call sequentially after ``warmup`` untimed calls (taken in order, cycling).

    ``warmup`` defaults to :func:`default_warmup` of ``device``.

    >>> result = measure_latency([lambda: sum(range(1000))] * 3, pairs=[10, 10, 10])
    >>> (result.per_query.n, result.per_pair.n)
    (3, 3)
    """
    if not calls:
        raise ConfigError("measure_latency needs at least one call")
    if pairs and len(pairs) != len(calls):
        raise ConfigError(f"got {len(pairs)} pair counts for {len(calls)} calls")
    warmup = default_warmup(device, len(calls)) if warmup is None else warmup
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"warmup must be an int >= 0, got {warmup!r}")
    on_gpu = _on_cuda(device)
    for i in range(warmup):
        calls[i % len(calls)]()
    wall: list[float] = []
    cpu: list[float] = []
    for call in calls:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        call()
        if on_gpu:
            torch.cuda.synchronize(device)
        wall.append(time.perf_counter() - wall0)
        cpu.append(time.process_time() - cpu0)
    gpu = tuple(wall) if on_gpu else (0.0,) * len(wall)
    return LatencyResult(tuple(wall), tuple(cpu), gpu, tuple(int(p) for p in pairs))


def _on_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if impossible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_bytes("VmHWM") is not None


def _peak_rss(reset: bool) -> tuple[int, str]:
    hwm = _status_bytes("VmHWM") if reset else None
    if hwm is not None:
        return hwm, "VmHWM since reset"
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024), "ru_maxrss (process lifetime)"


def _status_bytes(field: str) -> int | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+)\s+kB", text, flags=re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None
