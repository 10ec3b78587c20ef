"""Length-bucketed batches under a token budget, and prefetching them on a worker thread.

Rows are sorted by length (longest first) and cut into batches whose padded size
``rows * longest`` stays within ``token_budget``: short inputs travel in large batches, long
ones in small batches, and almost no compute is spent on padding. Callers scatter results
back with the returned row indices, so outputs keep input order.

Example:
    >>> [b.tolist() for b in plan_batches(np.array([3, 10, 4, 9]), token_budget=20)]
    [[1, 3], [2, 0]]
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from crossrank.errors import ConfigError, require_positive

T = TypeVar("T")
R = TypeVar("R")


def plan_batches(
    lengths: np.ndarray,
    token_budget: int,
    *,
    max_batch_size: int | None = None,
    pad_multiple: int = 1,
) -> list[np.ndarray]:
    """Row indices of each batch; ``len(batch) * padded_longest <= token_budget``.

    A single row longer than the budget forms a batch of its own. ``pad_multiple`` rounds the
    padded width up (e.g. 8 for GPU tensor cores) and is counted against the budget.
    """
    require_positive("token_budget", token_budget)
    require_positive("pad_multiple", pad_multiple)
    if max_batch_size is not None:
        require_positive("max_batch_size", max_batch_size)
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    padded = -(-lengths[order] // pad_multiple) * pad_multiple
    batches: list[np.ndarray] = []
    start = 0
    # One iteration per batch, not per row: each batch's size follows from its longest row.
    while start < len(order):
        size = max(1, token_budget // max(int(padded[start]), 1))
        if max_batch_size is not None:
            size = min(size, max_batch_size)
        batches.append(order[start : start + size])
        start += size
    return batches


def prefetch(make: Callable[[T], R], items: Iterable[T], depth: int) -> Iterator[R]:
    """``make(item)`` for each item, in order, computed up to ``depth`` items ahead on a thread.

    The producer (e.g. batch assembly) overlaps the consumer (e.g. the model), with at most
    ``depth`` finished results waiting. An exception in ``make`` is raised to the consumer at
    that item; when the consumer stops early (an error, or ``close()``) pending work is
    cancelled and the worker thread is joined, so nothing leaks. ``depth=0`` runs ``make``
    inline, on the caller's thread. Close the generator (``contextlib.closing``) if the
    consumer may stop before exhausting it.

    Example:
        >>> list(prefetch(lambda x: x * x, range(4), depth=2))
        [0, 1, 4, 9]
    """
    if depth < 0:
        raise ConfigError(f"prefetch depth must be >= 0, got {depth}")
    if depth == 0:
        yield from map(make, items)
        return
    source = iter(items)
    pending: deque[Future[R]] = deque()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossrank-prefetch")
    try:
        # One worker runs submissions in FIFO order; refilling after each take keeps at most
        # ``depth`` results queued (bounded memory) while the consumer works on the current one.
        pending.extend(pool.submit(make, item) for item in itertools.islice(source, depth))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(make, item) for item in itertools.islice(source, 1))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
