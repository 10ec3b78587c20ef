"""Planning without the model: per-pair token counts and truncation flags equal the engine's."""

from __future__ import annotations

import random

import numpy as np
import pytest
from transformers import AutoTokenizer

from crossrank.errors import ConfigError
from crossrank.inference.backends import Backend
from crossrank.inference.engine import EngineSettings, ScoringEngine
from crossrank.inference.passages import PassageConfig
from crossrank.inference.planning import PairPlanner, chunk_bounds
from crossrank.inference.tokenize import PairTokenizer, TokenBatch
from crossrank.models.heads import HeadLayout, HeadSpec
from crossrank.models.tiny import WORDS, build_tiny_checkpoint

MAX_LENGTH = 48


class _ZeroBackend(Backend):
    name = "zero"
    device = "cpu"

    def forward(self, batch: TokenBatch) -> np.ndarray:
        return np.zeros((batch.shape[0], 1), dtype=np.float32)


@pytest.fixture(scope="module")
def hf_tok(tmp_path_factory: pytest.TempPathFactory) -> object:
    return AutoTokenizer.from_pretrained(build_tiny_checkpoint(tmp_path_factory.mktemp("t") / "m"))


def _engine(hf_tok: object, chunk_pairs: int = 16384) -> ScoringEngine:
    settings = EngineSettings(MAX_LENGTH, token_budget=256, chunk_pairs=chunk_pairs)
    heads = HeadLayout.single(HeadSpec.binary())
    return ScoringEngine(PairTokenizer(hf_tok), _ZeroBackend(), heads, settings)


def _pairs(n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(3)
    queries = [" ".join(rng.choices(WORDS[:8], k=rng.randint(1, 4))) for _ in range(n)]
    docs = [" ".join(rng.choices(WORDS, k=rng.randint(0, 120))) for _ in range(n)]
    return queries, docs


def test_truncation_counts_equal_hf_pair_encoding(hf_tok: object) -> None:
    queries, docs = _pairs(40)
    counts = _engine(hf_tok).count_tokens(queries, docs, None)
    enc = hf_tok(queries, docs, truncation="only_second", max_length=MAX_LENGTH)
    assert counts.tokens.tolist() == [sum(mask) for mask in enc["attention_mask"]]
    full = hf_tok(queries, docs)["attention_mask"]
    assert counts.truncated.tolist() == [sum(mask) > MAX_LENGTH for mask in full]
    assert counts.truncated.any()
    assert not counts.truncated.all()


@pytest.mark.parametrize(
    "passages",
    [
        None,
        PassageConfig(window=12, stride=6),
        PassageConfig(window=12, stride=6, max_windows=2),
        PassageConfig(window=10, stride=5, mode="bm25"),
    ],
    ids=["truncate", "windows", "max_windows", "bm25"],
)
def test_counts_equal_what_score_runs_whatever_the_chunking(
    hf_tok: object, passages: PassageConfig | None
) -> None:
    queries, docs = _pairs(50)
    engine = _engine(hf_tok)
    counts = engine.count_tokens(queries, docs, passages)
    stats = engine.score(queries, docs, passages=passages).stats
    assert counts.tokens.shape == counts.truncated.shape == (50,)
    assert int(counts.tokens.sum()) == stats.tokens
    assert int(counts.truncated.sum()) == stats.truncated_pairs
    chunked = _engine(hf_tok, chunk_pairs=7).count_tokens(queries, docs, passages)
    assert np.array_equal(chunked.tokens, counts.tokens)
    assert np.array_equal(chunked.truncated, counts.truncated)


def test_windows_count_every_window_of_a_pair(hf_tok: object) -> None:
    planner = PairPlanner(PairTokenizer(hf_tok), MAX_LENGTH)
    doc = " ".join(WORDS[i % len(WORDS)] for i in range(30))
    n_doc = len(hf_tok(doc, add_special_tokens=False)["input_ids"])
    counts = planner.count(["cat"], [doc], PassageConfig(window=n_doc // 2, stride=n_doc // 2))
    # two windows, each with the query and three special tokens ([CLS] q [SEP] d [SEP])
    assert counts.tokens.tolist() == [2 * (1 + 3) + n_doc]
    assert counts.truncated.tolist() == [False]


def test_count_refuses_what_score_refuses(hf_tok: object) -> None:
    engine = _engine(hf_tok)
    with pytest.raises(ConfigError, match="query of pair 1 is empty"):
        engine.count_tokens(["ok", " "], ["a", "b"], None)
    with pytest.raises(ConfigError, match="query of pair 0 has"):
        engine.count_tokens(["cat " * 60, "ok"], ["a", "b"], None)
    with pytest.raises(ConfigError, match="2 queries but 1 documents"):
        engine.count_tokens(["a", "b"], ["a"], None)
    with pytest.raises(ConfigError, match="document 0 must be str"):
        engine.count_tokens(["a"], [3], None)
    empty = engine.count_tokens([], [], None)
    assert empty.tokens.shape == empty.truncated.shape == (0,)


@pytest.mark.parametrize(
    ("total", "first", "most", "expected"),
    [
        (0, 4, 30, []),
        (10, 4, 30, [(0, 4), (4, 10)]),
        (70, 4, 30, [(0, 4), (4, 12), (12, 28), (28, 58), (58, 70)]),
        (70, 50, 30, [(0, 30), (30, 60), (60, 70)]),
        (60, 30, 30, [(0, 30), (30, 60)]),
    ],
)
def test_chunk_bounds_grow_from_the_first_size_to_the_cap(
    total: int, first: int, most: int, expected: list[tuple[int, int]]
) -> None:
    assert chunk_bounds(total, first, most) == expected
