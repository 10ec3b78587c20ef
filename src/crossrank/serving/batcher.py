"""Micro-batching: concurrent requests merged into one model call, off the event loop.

Requests (a list of pairs, their passage mode and token count) wait in one FIFO queue. A
single worker thread takes the oldest request plus every later request with the same
passage mode while their tokens fit ``max_batch_tokens``, calls the scorer once on all their
pairs (the engine buckets them by length under its own per-forward token budget), splits
the scores back by offsets and resolves each request's future on its event loop. While the
model runs, new requests accumulate, so batches grow with load without a fixed wait;
``max_wait_s`` optionally lingers a moment for company when a batch is not full.

The queue is bounded (``max_queue`` requests): beyond it :class:`QueueFullError` carries a
retry delay from the measured throughput. A request that times out, or whose client goes
away, is withdrawn from the queue if it has not started. The model is only ever called
from the worker thread (the engine's ``last_stats`` is not thread-safe).

Example:
    >>> batcher = MicroBatcher(model.logits, BatcherSettings(max_batch_tokens=65536))  # doctest: +SKIP
    >>> batcher.start()  # doctest: +SKIP
    >>> scores = await batcher.submit(pairs, None, tokens=1200, timeout_s=30)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from crossrank.errors import ConfigError, CrossrankError, require_positive
from crossrank.inference.passages import PassageConfig

logger = logging.getLogger(__name__)
Pairs = list[tuple[str, str]]
PairScorer = Callable[[Pairs, PassageConfig | None], np.ndarray]
# Weight of the newest batch in the pairs/s estimate behind Retry-After.
_RATE_SMOOTHING = 0.3
_MAX_RETRY_AFTER_S = 300


class QueueFullError(CrossrankError):
    """The queue holds ``max_queue`` requests; retry after ``retry_after_s`` seconds."""

    def __init__(self, queued: int, retry_after_s: int) -> None:
        super().__init__(f"server busy: {queued} requests are queued; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class ShuttingDownError(CrossrankError):
    """The batcher is closing and takes no new requests."""


class BatchTimeoutError(CrossrankError):
    """A request did not finish within its timeout (``started``: it reached the model)."""

    def __init__(self, timeout_s: float, started: bool) -> None:
        where = "while being scored" if started else "while queued"
        super().__init__(f"request timed out after {timeout_s:g} s {where}")
        self.started = started


@dataclass(frozen=True, slots=True)
class BatcherSettings:
    """Merge budget, queue bound and linger time (see the module docstring)."""

    max_batch_tokens: int = 65_536
    max_queue: int = 64
    max_wait_s: float = 0.002

    def __post_init__(self) -> None:
        require_positive("max_batch_tokens", self.max_batch_tokens)
        require_positive("max_queue", self.max_queue)
        if not self.max_wait_s >= 0:
            raise ConfigError(f"max_wait_s must be >= 0, got {self.max_wait_s!r}")


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What one model call did: requests merged, pairs, tokens, seconds."""

    requests: int
    pairs: int
    tokens: int
    seconds: float


@dataclass(eq=False, slots=True)
class _Job:
    pairs: Pairs
    passages: PassageConfig | None
    tokens: int
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop
    started: bool = field(default=False)


class MicroBatcher:
    """Merges queued requests into model calls on one worker thread; see the module doc."""

    def __init__(
        self,
        scorer: PairScorer,
        settings: BatcherSettings,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> None:
        self._scorer = scorer
        self.settings = settings
        self._on_batch = on_batch
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._queued_pairs = 0
        self._running_pairs = 0
        self._closing = False
        self._rate = 0.0
        self._thread = threading.Thread(target=self._work, name="crossrank-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def accepting(self) -> bool:
        """True while the worker runs and the batcher is not closing."""
        return self._thread.is_alive() and not self._closing

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def queued_pairs(self) -> int:
        return self._queued_pairs

    @property
    def pairs_per_s(self) -> float:
        """Smoothed model throughput of recent batches (0 before the first)."""
        return self._rate

    def check_capacity(self, pending: int = 0) -> None:
        """Raise now if a request would be refused, counting ``pending`` requests on their
        way to the queue (the caller's admitted but not yet submitted ones)."""
        with self._cond:
            self._check_capacity_locked(pending)

    async def submit(
        self, pairs: Pairs, passages: PassageConfig | None, tokens: int, timeout_s: float
    ) -> np.ndarray:
        """Scores of ``pairs`` in order, once the worker has run them."""
        loop = asyncio.get_running_loop()
        job = _Job(pairs, passages, tokens, loop.create_future(), loop)
        with self._cond:
            self._check_capacity_locked()
            self._queue.append(job)
            self._queued_pairs += len(pairs)
            self._cond.notify()
        try:
            return await asyncio.wait_for(job.future, timeout_s)
        except TimeoutError:
            self._withdraw(job)
            raise BatchTimeoutError(timeout_s, job.started) from None
        except asyncio.CancelledError:  # the client went away: free its queue slot
            self._withdraw(job)
            raise

    async def close(self, timeout_s: float) -> None:
        """Refuse new requests, finish the queued ones, stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, timeout_s)
        if self._thread.is_alive():
            logger.error("batcher worker still busy after %.1f s; abandoning it", timeout_s)

    def _check_capacity_locked(self, pending: int = 0) -> None:
        if self._closing:
            raise ShuttingDownError("server is shutting down")
        if len(self._queue) + pending >= self.settings.max_queue:
            raise QueueFullError(len(self._queue) + pending, self._retry_after_s())

    def _retry_after_s(self) -> int:
        """Seconds until the queued and running work should be done at the current rate."""
        if self._rate <= 0:
            return 1
        backlog = self._queued_pairs + self._running_pairs
        return int(min(max(math.ceil(backlog / self._rate), 1), _MAX_RETRY_AFTER_S))

    def _withdraw(self, job: _Job) -> None:
        with self._cond:
            if not job.started:
                try:
                    self._queue.remove(job)
                except ValueError:
                    return
                self._queued_pairs -= len(job.pairs)

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._run(batch)
            except Exception as err:  # a bug in result handling must not kill the worker
                logger.exception("batcher: unexpected error")
                for job in batch:
                    _resolve(job, err)

    def _next_batch(self) -> list[_Job] | None:
        """Oldest job plus later jobs of its passage mode within the token budget."""
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            self._linger()
            first = self._queue[0]
            budget = self.settings.max_batch_tokens - first.tokens
            taken, kept = [first], deque()
            for job in list(self._queue)[1:]:
                if job.passages == first.passages and job.tokens <= budget:
                    taken.append(job)
                    budget -= job.tokens
                else:
                    kept.append(job)
            self._queue = kept
            for job in taken:
                job.started = True
            pairs = sum(len(job.pairs) for job in taken)
            self._queued_pairs -= pairs
            self._running_pairs = pairs
            return taken

    def _linger(self) -> None:
        """Wait up to ``max_wait_s`` for more requests while the queue is under budget."""
        deadline = time.monotonic() + self.settings.max_wait_s
        while not self._closing and self._queue_tokens() < self.settings.max_batch_tokens:
            left = deadline - time.monotonic()
            if left <= 0 or not self._cond.wait(left):
                return

    def _queue_tokens(self) -> int:
        return sum(job.tokens for job in self._queue)

    def _run(self, batch: list[_Job]) -> None:
        try:
            self._execute(batch)
        finally:
            with self._cond:
                self._running_pairs = 0

    def _execute(self, batch: list[_Job]) -> None:
        pairs = [pair for job in batch for pair in job.pairs]
        started = time.perf_counter()
        try:
            scores = self._scorer(pairs, batch[0].passages)
            if scores.shape != (len(pairs),):
                raise RuntimeError(f"scorer returned shape {scores.shape} for {len(pairs)} pairs")
        except Exception as err:
            if len(batch) == 1:
                _resolve(batch[0], err)
                return
            # Inputs are validated before queueing, so this is rare; scoring each request
            # alone keeps one request's failure from failing the others.
            logger.warning("batch of %d requests failed (%s); retrying each", len(batch), err)
            for job in batch:
                self._execute([job])
            return
        seconds = time.perf_counter() - started
        bounds = np.cumsum([len(job.pairs) for job in batch])[:-1]
        for job, part in zip(batch, np.split(scores, bounds), strict=True):
            _resolve(job, part)
        self._record(BatchReport(len(batch), len(pairs), sum(j.tokens for j in batch), seconds))

    def _record(self, report: BatchReport) -> None:
        with self._cond:
            if report.seconds > 0:
                rate = report.pairs / report.seconds
                self._rate = (
                    rate
                    if self._rate == 0
                    else (_RATE_SMOOTHING * rate + (1 - _RATE_SMOOTHING) * self._rate)
                )
        if self._on_batch is not None:
            self._on_batch(report)


def _resolve(job: _Job, outcome: np.ndarray | BaseException) -> None:
    """Set the job's future on its own loop (futures are not thread-safe)."""

    def settle() -> None:
        if job.future.done():  # timed out or cancelled meanwhile
            return
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        job.loop.call_soon_threadsafe(settle)
