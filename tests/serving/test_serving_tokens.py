"""The server's per-request token accounting equals what the engine actually runs."""

from __future__ import annotations

import numpy as np
import pytest
from serving_helpers import MAX_LENGTH, make_docs

from crossrank import CrossEncoder
from crossrank.errors import ConfigError
from crossrank.inference.passages import PassageConfig
from crossrank.serving.tokens import TokenCounter


@pytest.fixture(scope="module")
def counter(reference: CrossEncoder) -> TokenCounter:
    return TokenCounter(reference.model.tokenizer, MAX_LENGTH)


@pytest.mark.parametrize(
    "passages",
    [
        None,
        PassageConfig(window=16, stride=8),
        PassageConfig(window=16, stride=8, max_windows=2),
        PassageConfig(window=16, stride=16, aggregate="firstp"),
        PassageConfig(window=12, stride=6, mode="bm25"),
        PassageConfig(window=12, stride=6, mode="bm25", max_windows=3),
    ],
    ids=["truncate", "windows", "max_windows", "firstp", "bm25", "bm25_capped"],
)
def test_counts_match_engine_stats(
    counter: TokenCounter, reference: CrossEncoder, passages: PassageConfig | None
) -> None:
    docs = [*make_docs(30, seed=7, min_words=1, max_words=80), "", "gene " * 300]
    queries = ["cat gene"] * 20 + ["what is bm25 rank"] * 12
    count = counter.count(queries, docs, passages)
    reference.predict(list(zip(queries, docs, strict=True)), passages=passages)
    stats = reference.last_stats
    assert count.tokens == stats.tokens
    assert int(count.truncated.sum()) == stats.truncated_pairs
    assert count.truncated.shape == (32,)
    # 300 words lose text unless unbounded windows cover them all
    covered = passages is not None and passages.mode == "windows" and passages.max_windows is None
    assert count.truncated[-1] == (not covered or passages.aggregate == "firstp")


def test_truncated_flags_per_pair(counter: TokenCounter, reference: CrossEncoder) -> None:
    docs = ["short doc", "gene " * 100, "cat dog"]
    count = counter.count(["q"] * 3, docs, None)
    assert count.truncated.tolist() == [False, True, False]
    assert count.tokens == sum(
        reference.model.tokenizer(["q"] * 3, docs, truncation="only_second", max_length=MAX_LENGTH)
        .attention_mask[i]
        .count(1)
        for i in range(3)
    )


def test_query_checks(counter: TokenCounter) -> None:
    with pytest.raises(ConfigError, match="query of pair 1 is empty"):
        counter.count(["ok", " "], ["a", "b"], None)
    with pytest.raises(ConfigError, match="query of pair 0 has 62\\+ tokens"):
        counter.count(["gene " * 62, "ok"], ["a", "b"], None)
    with pytest.raises(ConfigError, match="2 queries but 1 documents"):
        counter.count(["a", "b"], ["a"], None)
    assert counter.count([], [], None).tokens == 0


def test_cut_keeps_a_token_prefix_at_word_starts(
    counter: TokenCounter, reference: CrossEncoder
) -> None:
    tok = reference.model.tokenizer
    docs = ["haystack needle haystack " * 5, "short", "xyzzy plugh frobnicate " * 4, ""]
    for max_tokens in (1, 3, 7, 20):
        for doc, cut in zip(docs, counter.cut(docs, max_tokens), strict=True):
            full = tok(doc, add_special_tokens=False).input_ids
            kept = tok(cut, add_special_tokens=False).input_ids
            assert len(kept) <= max_tokens
            assert kept == full[: len(kept)]
            if len(full) <= max_tokens:
                assert cut == doc
    # 'xyzzy' is several word pieces: a cut inside it drops the whole word
    cut = counter.cut(["ab xyzzy"], 2)[0]
    assert len(tok("xyzzy", add_special_tokens=False).input_ids) > 1
    assert cut == "ab"
    with pytest.raises(ConfigError, match="max_tokens must be > 0"):
        counter.cut(["a"], 0)


def test_token_count_is_independent_of_other_pairs(counter: TokenCounter) -> None:
    docs = make_docs(12, seed=8, max_words=70)
    whole = counter.count(["cat"] * 12, docs, None)
    parts = [counter.count(["cat"] * 4, docs[i : i + 4], None) for i in range(0, 12, 4)]
    assert whole.tokens == sum(p.tokens for p in parts)
    np.testing.assert_array_equal(whole.truncated, np.concatenate([p.truncated for p in parts]))
