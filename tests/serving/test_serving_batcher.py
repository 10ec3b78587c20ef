"""MicroBatcher with a fake scorer: merging, order, grouping, limits, failures, shutdown."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from crossrank.errors import ConfigError
from crossrank.inference.passages import PassageConfig
from crossrank.serving.batcher import (
    BatcherSettings,
    BatchReport,
    BatchTimeoutError,
    MicroBatcher,
    QueueFullError,
    ShuttingDownError,
)
from crossrank.serving.metrics import Gauges, Histogram, ServerMetrics

Pairs = list[tuple[str, str]]


class FakeScorer:
    """Score = a number parsed from the document; records calls; can block or fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, PassageConfig | None]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, pairs: Pairs, passages: PassageConfig | None) -> np.ndarray:
        self.entered.set()
        self.calls.append((len(pairs), passages))
        assert self.gate.wait(10)
        if any(d == "boom" for _, d in pairs):
            raise ValueError("cannot score 'boom'")
        return np.array([float(d) for _, d in pairs], dtype=np.float32)


def pairs_of(values: range | list[int]) -> Pairs:
    return [("q", str(v)) for v in values]


def make(scorer: FakeScorer, reports: list[BatchReport] | None = None, **settings) -> MicroBatcher:
    on_batch = reports.append if reports is not None else None
    batcher = MicroBatcher(scorer, BatcherSettings(**settings), on_batch=on_batch)
    batcher.start()
    return batcher


async def _wait(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


def test_merges_queued_requests_and_splits_results_in_order() -> None:
    scorer, reports = FakeScorer(), []

    async def main() -> list[np.ndarray]:
        batcher = make(scorer, reports, max_wait_s=0)
        scorer.gate.clear()
        first = asyncio.create_task(batcher.submit(pairs_of(range(3)), None, 30, 5))
        await _wait(scorer.entered.is_set)
        rest = [
            asyncio.create_task(batcher.submit(pairs_of(range(10 * i, 10 * i + i)), None, 10, 5))
            for i in range(1, 6)
        ]
        await _wait(lambda: batcher.queue_depth == 5)
        scorer.gate.set()
        out = await asyncio.gather(first, *rest)
        await batcher.close(5)
        return out

    results = asyncio.run(main())
    assert results[0].tolist() == [0, 1, 2]
    for i, got in enumerate(results[1:], start=1):
        assert got.tolist() == list(range(10 * i, 10 * i + i))
    assert [n for n, _ in scorer.calls] == [3, 15]
    assert [(r.requests, r.pairs, r.tokens) for r in reports] == [(1, 3, 30), (5, 15, 50)]


def test_token_budget_and_passage_mode_split_batches() -> None:
    scorer = FakeScorer()
    windows = PassageConfig(window=16, stride=8)

    async def main() -> None:
        batcher = make(scorer, max_batch_tokens=100, max_wait_s=0)
        scorer.gate.clear()
        block = asyncio.create_task(batcher.submit(pairs_of([0]), None, 1, 5))
        await _wait(scorer.entered.is_set)
        jobs = [
            batcher.submit(pairs_of([1]), None, 60, 5),
            batcher.submit(pairs_of([2]), windows, 10, 5),
            batcher.submit(pairs_of([3]), None, 30, 5),
            batcher.submit(pairs_of([4]), None, 30, 5),  # over budget with 1 and 3
            batcher.submit(pairs_of([5]), windows, 10, 5),
        ]
        tasks = [asyncio.create_task(j) for j in jobs]
        await _wait(lambda: batcher.queue_depth == 5)
        scorer.gate.set()
        got = await asyncio.gather(block, *tasks)
        assert [g.tolist() for g in got] == [[0], [1], [2], [3], [4], [5]]
        await batcher.close(5)

    asyncio.run(main())
    assert scorer.calls == [(1, None), (2, None), (2, windows), (1, None)]


def test_queue_full_raises_with_retry_after() -> None:
    scorer = FakeScorer()

    async def main() -> None:
        batcher = make(scorer, max_queue=2, max_wait_s=0)
        await batcher.submit(pairs_of(range(50)), None, 50, 5)  # measures a rate
        scorer.gate.clear()
        scorer.entered.clear()
        tasks = [asyncio.create_task(batcher.submit(pairs_of([1]), None, 1, 5))]
        await _wait(scorer.entered.is_set)
        tasks += [asyncio.create_task(batcher.submit(pairs_of([1]), None, 1, 5)) for _ in range(2)]
        await _wait(lambda: batcher.queue_depth == 2)
        with pytest.raises(QueueFullError, match="2 requests are queued") as err:
            await batcher.submit(pairs_of([1]), None, 1, 5)
        assert err.value.retry_after_s >= 1
        with pytest.raises(QueueFullError):
            batcher.check_capacity()
        scorer.gate.set()
        assert len(await asyncio.gather(*tasks)) == 3
        batcher.check_capacity()  # room again
        await batcher.close(5)

    asyncio.run(main())


def test_timeout_withdraws_a_queued_request() -> None:
    scorer = FakeScorer()

    async def main() -> None:
        batcher = make(scorer, max_wait_s=0)
        scorer.gate.clear()
        running = asyncio.create_task(batcher.submit(pairs_of([1]), None, 1, 0.2))
        await _wait(scorer.entered.is_set)
        with pytest.raises(BatchTimeoutError, match="while queued"):
            await batcher.submit(pairs_of([2, 3]), None, 2, 0.1)
        assert batcher.queue_depth == 0 and batcher.queued_pairs == 0
        with pytest.raises(BatchTimeoutError, match="while being scored"):
            await running
        scorer.gate.set()
        assert (await batcher.submit(pairs_of([4]), None, 1, 5)).tolist() == [4]
        await batcher.close(5)

    asyncio.run(main())
    assert [n for n, _ in scorer.calls] == [1, 1]


def test_a_failing_request_does_not_fail_its_batch_mates() -> None:
    scorer = FakeScorer()

    async def main() -> list:
        batcher = make(scorer, max_wait_s=0)
        scorer.gate.clear()
        first = asyncio.create_task(batcher.submit(pairs_of([0]), None, 1, 5))
        await _wait(scorer.entered.is_set)
        good = asyncio.create_task(batcher.submit(pairs_of([7, 8]), None, 2, 5))
        bad = asyncio.create_task(batcher.submit([("q", "boom")], None, 1, 5))
        await _wait(lambda: batcher.queue_depth == 2)
        scorer.gate.set()
        out = await asyncio.gather(first, good, bad, return_exceptions=True)
        await batcher.close(5)
        return out

    first, good, bad = asyncio.run(main())
    assert first.tolist() == [0] and good.tolist() == [7, 8]
    assert isinstance(bad, ValueError) and "boom" in str(bad)
    assert [n for n, _ in scorer.calls] == [1, 3, 2, 1]  # merged try, then one by one


def test_wrong_score_count_is_an_error_not_a_crash() -> None:
    async def main() -> None:
        batcher = MicroBatcher(lambda pairs, _: np.zeros(1), BatcherSettings(max_wait_s=0))
        batcher.start()
        with pytest.raises(RuntimeError, match="shape \\(1,\\) for 2 pairs"):
            await batcher.submit(pairs_of([1, 2]), None, 2, 5)
        assert batcher.accepting  # the worker survived
        await batcher.close(5)

    asyncio.run(main())


def test_close_finishes_queued_work_then_refuses() -> None:
    scorer = FakeScorer()

    async def main() -> None:
        batcher = make(scorer, max_wait_s=0)
        scorer.gate.clear()
        tasks = [asyncio.create_task(batcher.submit(pairs_of([0]), None, 1, 5))]
        await _wait(scorer.entered.is_set)
        tasks += [asyncio.create_task(batcher.submit(pairs_of([i]), None, 1, 5)) for i in (1, 2, 3)]
        await _wait(lambda: batcher.queue_depth == 3)
        closing = asyncio.create_task(batcher.close(5))
        await _wait(lambda: not batcher.accepting)
        with pytest.raises(ShuttingDownError):
            await batcher.submit(pairs_of([9]), None, 1, 5)
        scorer.gate.set()
        await closing
        assert [t.result().tolist() for t in tasks] == [[0], [1], [2], [3]]

    asyncio.run(main())


def test_linger_collects_requests_arriving_within_max_wait() -> None:
    scorer = FakeScorer()

    async def main() -> None:
        batcher = make(scorer, max_wait_s=0.3)
        first = asyncio.create_task(batcher.submit(pairs_of([1]), None, 1, 5))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(batcher.submit(pairs_of([2]), None, 1, 5))
        assert [(await first).tolist(), (await second).tolist()] == [[1], [2]]
        await batcher.close(5)

    asyncio.run(main())
    assert [n for n, _ in scorer.calls] == [2]


def test_settings_validation() -> None:
    with pytest.raises(ConfigError, match="max_queue must be > 0"):
        BatcherSettings(max_queue=0)
    with pytest.raises(ConfigError, match="max_wait_s must be >= 0"):
        BatcherSettings(max_wait_s=-0.1)


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    hist = Histogram([1, 5, 10])
    for value in (0.5, 1, 3, 10, 11):
        hist.observe(value)
    assert hist.lines("x") == [
        'x_bucket{le="1"} 2',
        'x_bucket{le="5"} 3',
        'x_bucket{le="10"} 4',
        'x_bucket{le="+Inf"} 5',
        "x_sum 25.5",
        "x_count 5",
    ]


def test_metrics_render_batches_and_gauges() -> None:
    metrics = ServerMetrics()
    metrics.observe_batch(BatchReport(requests=3, pairs=100, tokens=5000, seconds=0.5))
    text = metrics.render(Gauges(queue_depth=4, queued_pairs=250, pairs_per_s=200.0))
    for line in (
        "crossrank_pairs_total 100",
        "crossrank_tokens_total 5000",
        "crossrank_batches_total 1",
        'crossrank_batch_requests_bucket{le="4"} 1',
        'crossrank_batch_pairs_bucket{le="64"} 0',
        'crossrank_batch_pairs_bucket{le="128"} 1',
        "crossrank_model_seconds_total 0.5",
        "crossrank_queue_depth 4",
        "crossrank_queued_pairs 250",
        "crossrank_pairs_per_second 200",
    ):
        assert line in text.splitlines(), line
