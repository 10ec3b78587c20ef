"""Server metrics in the Prometheus text exposition format (version 0.0.4).

Counters and histograms are updated from the event loop (requests) and the batcher thread
(model calls), hence the lock. Gauges (queue depth, throughput) are read at render time.

Exposed families (all prefixed ``crossrank_``): ``requests_total{endpoint,status}``,
``errors_total{status}``, ``request_latency_seconds{endpoint}`` (histogram),
``requests_in_flight``, ``queue_depth``, ``queued_pairs``, ``batch_pairs`` and
``batch_requests`` (histograms), ``pairs_total``, ``tokens_total``, ``batches_total``,
``model_seconds_total`` and ``pairs_per_second``.

Example:
    >>> m = ServerMetrics()
    >>> m.observe_request("/v1/rerank", 200, 0.12)
    >>> 'crossrank_requests_total{endpoint="/v1/rerank",status="200"} 1' in m.render(Gauges())
    True
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crossrank.serving.batcher import BatchReport

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PAIR_BUCKETS = (1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
REQUEST_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Histogram:
    """Cumulative-bucket histogram (upper bounds inclusive, as Prometheus' ``le``)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.counts = np.zeros(len(bounds) + 1, dtype=np.int64)  # last: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[int(np.searchsorted(self.bounds, value, side="left"))] += 1
        self.total += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        cumulative = np.cumsum(self.counts)
        out = [
            f'{name}_bucket{{{labels}{sep}le="{_num(b)}"}} {int(c)}'
            for b, c in zip(self.bounds, cumulative[:-1], strict=True)
        ]
        braces = f"{{{labels}}}" if labels else ""
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {int(cumulative[-1])}')
        out.append(f"{name}_sum{braces} {_num(self.total)}")
        out.append(f"{name}_count{braces} {int(cumulative[-1])}")
        return out


@dataclass(frozen=True, slots=True)
class Gauges:
    """Point-in-time values read when the metrics are rendered."""

    queue_depth: int = 0
    queued_pairs: int = 0
    pairs_per_s: float = 0.0


class ServerMetrics:
    """Request and batch statistics of one server process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._latency: dict[str, Histogram] = {}
        self._batch_pairs = Histogram(PAIR_BUCKETS)
        self._batch_requests = Histogram(REQUEST_BUCKETS)
        self._totals = Counter({"pairs": 0, "tokens": 0, "batches": 0})
        self._model_seconds = 0.0
        self.in_flight = 0  # updated on the event loop only

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[endpoint, status] += 1
            if endpoint not in self._latency:
                self._latency[endpoint] = Histogram(LATENCY_BUCKETS)
            self._latency[endpoint].observe(seconds)

    def observe_batch(self, report: BatchReport) -> None:
        with self._lock:
            self._batch_pairs.observe(report.pairs)
            self._batch_requests.observe(report.requests)
            self._totals.update(pairs=report.pairs, tokens=report.tokens, batches=1)
            self._model_seconds += report.seconds

    def render(self, gauges: Gauges) -> str:
        """The exposition text (ends with a newline)."""
        with self._lock:
            lines = [*self._request_lines(), *self._batch_lines()]
        lines += _family("crossrank_requests_in_flight", "gauge", "requests being handled")
        lines.append(f"crossrank_requests_in_flight {self.in_flight}")
        lines += _family("crossrank_queue_depth", "gauge", "requests waiting for the model")
        lines.append(f"crossrank_queue_depth {gauges.queue_depth}")
        lines += _family("crossrank_queued_pairs", "gauge", "pairs waiting for the model")
        lines.append(f"crossrank_queued_pairs {gauges.queued_pairs}")
        lines += _family(
            "crossrank_pairs_per_second", "gauge", "model throughput, smoothed over batches"
        )
        lines.append(f"crossrank_pairs_per_second {_num(gauges.pairs_per_s)}")
        return "\n".join(lines) + "\n"

    def _request_lines(self) -> list[str]:
        lines = _family("crossrank_requests_total", "counter", "HTTP requests by status")
        for (endpoint, status), n in sorted(self._requests.items()):
            lines.append(f'crossrank_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
        errors: Counter[int] = Counter()
        for (_, status), n in self._requests.items():
            if status >= 400:
                errors[status] += n
        lines += _family("crossrank_errors_total", "counter", "HTTP error responses by status")
        lines += [f'crossrank_errors_total{{status="{s}"}} {n}' for s, n in sorted(errors.items())]
        lines += _family(
            "crossrank_request_latency_seconds", "histogram", "request latency by endpoint"
        )
        for endpoint, hist in sorted(self._latency.items()):
            lines += hist.lines("crossrank_request_latency_seconds", f'endpoint="{endpoint}"')
        return lines

    def _batch_lines(self) -> list[str]:
        lines = _family("crossrank_batch_pairs", "histogram", "pairs per model call")
        lines += self._batch_pairs.lines("crossrank_batch_pairs")
        lines += _family("crossrank_batch_requests", "histogram", "requests merged per model call")
        lines += self._batch_requests.lines("crossrank_batch_requests")
        for key, help_text in (
            ("pairs", "pairs scored"),
            ("tokens", "model-input tokens scored"),
            ("batches", "model calls"),
        ):
            lines += _family(f"crossrank_{key}_total", "counter", help_text)
            lines.append(f"crossrank_{key}_total {self._totals[key]}")
        lines += _family("crossrank_model_seconds_total", "counter", "seconds spent in the model")
        lines.append(f"crossrank_model_seconds_total {_num(self._model_seconds)}")
        return lines


def _family(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _num(value: float) -> str:
    """Prometheus number: integers without a trailing '.0', floats in repr form."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
