from __future__ import annotations

import itertools

import numpy as np
import pytest

from crossrank.errors import ConfigError
from crossrank.inference.batching import plan_batches


@pytest.mark.parametrize("pad_multiple", [1, 8])
def test_batches_cover_every_row_once_within_budget(pad_multiple: int) -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 300, size=1000)
    batches = plan_batches(lengths, token_budget=2048, pad_multiple=pad_multiple)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))
    for batch in batches:
        width = -(-lengths[batch].max() // pad_multiple) * pad_multiple
        assert len(batch) * width <= 2048
    # Longest first: each batch's rows are no longer than the previous batch's shortest.
    for prev, cur in itertools.pairwise(batches):
        assert lengths[cur].max() <= lengths[prev].min()


def test_row_longer_than_budget_gets_its_own_batch_and_cap_applies() -> None:
    batches = plan_batches(np.array([10, 5000, 10, 10]), token_budget=100, max_batch_size=2)
    assert [b.tolist() for b in batches] == [[1], [0, 2], [3]]


def test_invalid_budget_is_rejected() -> None:
    with pytest.raises(ConfigError, match="token_budget"):
        plan_batches(np.array([3]), token_budget=0)
