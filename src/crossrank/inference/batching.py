"""Length-bucketed batches under a token budget.

Rows are sorted by length (longest first) and cut into batches whose padded size
``rows * longest`` stays within ``token_budget``: short inputs travel in large batches, long
ones in small batches, and almost no compute is spent on padding. Callers scatter results
back with the returned row indices, so outputs keep input order.

Example:
    >>> [b.tolist() for b in plan_batches(np.array([3, 10, 4, 9]), token_budget=20)]
    [[1, 3], [2, 0]]
"""

from __future__ import annotations

import numpy as np

from crossrank.errors import require_positive


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
