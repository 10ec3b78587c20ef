"""Pure windowing, aggregation and BM25 passage selection."""

from __future__ import annotations

import numpy as np
import pytest

from crossrank.errors import ConfigError
from crossrank.inference.passages import (
    PassageConfig,
    Spans,
    aggregate,
    bm25_best_spans,
    clipped_by_windows,
    window_spans,
)


def test_windows_cover_documents_and_short_ones_cost_one_span() -> None:
    lengths = np.array([0, 1, 128, 129, 192, 193, 1000])
    spans = window_spans(lengths, window=128, stride=64)
    counts = np.bincount(spans.owner, minlength=len(lengths))
    assert counts.tolist() == [1, 1, 1, 2, 2, 3, 15]
    for doc, n in enumerate(lengths):
        own = spans.owner == doc
        covered = np.zeros(n, dtype=bool)
        for s, e in zip(spans.start[own], spans.end[own], strict=True):
            assert 0 <= s <= e <= n and e - s <= 128
            covered[s:e] = True
        assert covered.all()
    assert not clipped_by_windows(lengths, spans, len(lengths)).any()


def test_per_pair_windows_and_max_windows_cap() -> None:
    spans = window_spans(
        np.array([300, 300]), window=np.array([128, 100]), stride=64, max_windows=2
    )
    assert spans.start.tolist() == [0, 64, 0, 64]
    assert spans.end.tolist() == [128, 192, 100, 164]
    assert clipped_by_windows(np.array([300, 300]), spans, 2).tolist() == [True, True]


def _naive(scores: np.ndarray, owner: np.ndarray, n: int, method: str, k: int) -> list[float]:
    out = []
    for o in range(n):
        s = scores[owner == o]
        out.append(
            {
                "maxp": s.max(),
                "firstp": s[0],
                "sump": s.sum(),
                "avgp": s.mean(),
                "topk_mean": np.sort(s)[::-1][:k].mean(),
            }[method]
        )
    return out


@pytest.mark.parametrize("method", ["maxp", "firstp", "sump", "avgp", "topk_mean"])
def test_aggregates_match_naive_definition(method: str) -> None:
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 7, size=50)
    owner = np.repeat(np.arange(50), counts)
    scores = rng.normal(size=len(owner)).astype(np.float32)
    got = aggregate(scores, owner, 50, method, k=3)
    np.testing.assert_allclose(got, _naive(scores, owner, 50, method, 3), rtol=1e-5, atol=1e-6)


def test_aggregate_rejects_unknown_method_and_empty_groups() -> None:
    with pytest.raises(ConfigError):
        aggregate(np.zeros(2), np.array([0, 0]), 1, "median")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one window"):
        aggregate(np.zeros(2), np.array([0, 0]), 2, "maxp")


def test_bm25_picks_the_window_with_the_query_terms() -> None:
    # Owner 0: query terms {7, 8} appear only in tokens 300..310 of a 600-token document.
    doc = np.full(600, 1, dtype=np.int64)
    doc[300:305] = 7
    doc[305:310] = 8
    other = np.arange(100, 400, dtype=np.int64)  # owner 1: no query term at all
    doc_ids = np.concatenate([doc, other])
    query_ids = np.array([7, 8, 9], dtype=np.int64)
    spans = window_spans(np.array([600, 300]), window=128, stride=64)
    best = bm25_best_spans(
        spans,
        doc_ids=doc_ids,
        doc_start=np.array([0, 600]),
        query_ids=query_ids,
        query_start=np.array([0, 0]),
        query_len=np.array([3, 3]),
    )
    assert best.owner.tolist() == [0, 1]
    assert best.start[0] <= 300 and best.end[0] >= 310
    assert best.start[1] == 0  # no match anywhere: the first window


def test_bm25_handles_single_window_documents() -> None:
    spans = Spans(np.array([0]), np.array([0]), np.array([3]))
    best = bm25_best_spans(
        spans,
        doc_ids=np.array([5, 6, 7]),
        doc_start=np.array([0]),
        query_ids=np.array([6]),
        query_start=np.array([0]),
        query_len=np.array([1]),
    )
    assert best.end.tolist() == [3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 0}, "window"),
        ({"stride": 200}, "stride"),
        ({"aggregate": "median"}, "aggregate"),
        ({"mode": "dense"}, "mode"),
        ({"max_windows": 0}, "max_windows"),
    ],
)
def test_passage_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PassageConfig(**kwargs)
