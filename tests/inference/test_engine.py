"""The scoring pipeline: exactness, order, budget, truncation, bad input, long documents."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from crossrank import CrossEncoder
from crossrank.errors import ConfigError
from crossrank.inference.backends import Backend
from crossrank.inference.engine import EngineSettings, ScoringEngine
from crossrank.inference.passages import PassageConfig
from crossrank.inference.tokenize import PairTokenizer, TokenBatch
from crossrank.models.heads import HeadLayout, HeadSpec
from crossrank.models.tiny import WORDS, build_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


def _pairs(n: int, seed: int = 0, max_doc_words: int = 120) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
        d = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, max_doc_words)))
        out.append((q, d))
    return out


def _plain_forward(path: Path, pairs: list[tuple[str, str]], max_length: int) -> np.ndarray:
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    out = []
    with torch.no_grad():
        for q, d in pairs:  # one pair at a time: no padding at all in the reference
            # Batch-of-one call: HF encodes an empty document as a pair, as in batches.
            enc = tok(
                [q], [d], truncation="only_second", max_length=max_length, return_tensors="pt"
            )
            out.append(model(**enc).logits[0, 0].item())
    return np.array(out, dtype=np.float32)


class RecordingBackend(Backend):
    """Scores rows by how often ``needle`` occurs in the document; records every batch."""

    name = "recording"
    device = "cpu"

    def __init__(self, needle: int) -> None:
        self.needle = needle
        self.batches: list[TokenBatch] = []

    def forward(self, batch: TokenBatch) -> np.ndarray:
        self.batches.append(batch)
        in_doc = (batch.token_type_ids == 1) & (batch.attention_mask == 1)
        hits = ((batch.input_ids == self.needle) & in_doc).sum(axis=1)
        return hits.astype(np.float32)[:, None]


def _engine(
    tiny_dir: Path, max_length: int = 64, budget: int = 256
) -> tuple[ScoringEngine, RecordingBackend]:
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    backend = RecordingBackend(tok.convert_tokens_to_ids("needle"))
    settings = EngineSettings(max_length=max_length, token_budget=budget)
    return ScoringEngine(
        PairTokenizer(tok), backend, HeadLayout.single(HeadSpec.binary()), settings
    ), backend


def test_torch_scores_equal_plain_transformers_forward_in_input_order(tiny_dir: Path) -> None:
    pairs = _pairs(60)
    ce = CrossEncoder.from_pretrained(
        tiny_dir, backend="torch", device="cpu", max_length=96, token_budget=300
    )
    got = ce.predict(pairs)
    np.testing.assert_allclose(got, _plain_forward(tiny_dir, pairs, 96), atol=1e-5, rtol=0)
    assert ce._engine.backend.cls_only  # the exact scores came through the CLS-only last layer
    assert ce.last_stats.batches > 5  # a small budget forces many length buckets
    assert ce.last_stats.pairs == 60


def test_token_budget_respected_and_query_never_truncated(tiny_dir: Path) -> None:
    engine, backend = _engine(tiny_dir, max_length=40, budget=200)
    query = "needle needle needle what is bm25"
    # 6 query tokens + 3 special tokens leave room for exactly 31 document tokens.
    pairs = [(query, "filler " * n) for n in (0, 5, 31, 32, 100)]
    result = engine.score([q for q, _ in pairs], [d for _, d in pairs])
    assert result.stats.truncated_pairs == 2
    assert all(b.input_ids.size <= 200 for b in backend.batches)
    q_ids = engine.tokenizer.encode([query]).tokens.ids
    for batch in backend.batches:  # every row: [CLS] + the whole query + [SEP]
        np.testing.assert_array_equal(
            batch.input_ids[:, 1 : 1 + len(q_ids)], np.tile(q_ids, (len(batch.input_ids), 1))
        )
    assert max(b.input_ids.shape[1] for b in backend.batches) <= 40


def test_empty_document_scores_and_empty_query_is_an_error(tiny_dir: Path) -> None:
    ce = CrossEncoder.from_pretrained(tiny_dir, backend="torch", device="cpu", max_length=64)
    score = ce.predict([("what is bm25", "")])
    np.testing.assert_allclose(
        score, _plain_forward(tiny_dir, [("what is bm25", "")], 64), atol=1e-5
    )
    with pytest.raises(ConfigError, match="query of pair 1 is empty"):
        ce.predict([("cats", "dogs"), ("  ", "dogs")])


def test_query_too_long_for_max_length_is_an_error(tiny_dir: Path) -> None:
    engine, _ = _engine(tiny_dir, max_length=16)
    with pytest.raises(ConfigError, match=r"pair 0 has .* tokens.*never truncated"):
        engine.score(["cat " * 40], ["dog"])


def test_non_utf8_bytes_are_a_clear_error(tiny_dir: Path) -> None:
    engine, _ = _engine(tiny_dir)
    with pytest.raises(ConfigError, match="document 0 is not valid UTF-8"):
        engine.score(["cats"], [b"\xc3\x28 bad bytes"])


def test_megabyte_document_is_truncated_in_bounded_time(tiny_dir: Path) -> None:
    ce = CrossEncoder.from_pretrained(tiny_dir, backend="torch", device="cpu", max_length=64)
    doc = ("needle in a haystack of filler text " * 40000)[:1_000_000]
    start = time.perf_counter()
    score = ce.predict([("needle", doc)])
    assert time.perf_counter() - start < 5.0
    assert ce.last_stats.truncated_pairs == 1
    np.testing.assert_allclose(
        score, _plain_forward(tiny_dir, [("needle", doc[:2000])], 64), atol=1e-5
    )


def test_short_documents_cost_one_window_and_maxp_reproduces_full_scores(tiny_dir: Path) -> None:
    pairs = _pairs(30, seed=3, max_doc_words=60)  # < 128 tokens each
    ce = CrossEncoder.from_pretrained(tiny_dir, backend="torch", device="cpu", max_length=160)
    full = ce.predict(pairs)
    windowed = ce.predict(pairs, passages=PassageConfig(window=128, stride=64, aggregate="maxp"))
    assert ce.last_stats.sequences == len(pairs)
    np.testing.assert_allclose(windowed, full, atol=1e-6)
    assert (
        np.argsort(-windowed, kind="stable").tolist() == np.argsort(-full, kind="stable").tolist()
    )


def test_maxp_finds_passage_buried_after_2000_tokens_that_truncation_misses(tiny_dir: Path) -> None:
    engine, _ = _engine(tiny_dir, max_length=256, budget=4096)
    filler = "filler text " * 1100  # 2,200 tokens before the relevant passage
    relevant = filler + "needle needle needle " + "filler " * 50
    other = "filler text " * 1200 + "needle " + "filler " * 50
    queries, docs = ["needle haystack"] * 2, [relevant, other]
    truncated = engine.score(queries, docs).heads["relevance"]
    assert truncated.tolist() == [0.0, 0.0]  # both look alike when cut at 256 tokens
    result = engine.score(
        queries, docs, passages=PassageConfig(window=128, stride=64, aggregate="maxp")
    )
    assert result.heads["relevance"].tolist() == [3.0, 1.0]
    assert result.stats.sequences > 60  # every window of both documents was scored
    firstp = engine.score(queries, docs, passages=PassageConfig(aggregate="firstp"))
    assert firstp.heads["relevance"].tolist() == [0.0, 0.0] and firstp.stats.sequences == 2
    bm25 = engine.score(queries, docs, passages=PassageConfig(window=128, stride=64, mode="bm25"))
    assert bm25.heads["relevance"].tolist() == [3.0, 1.0] and bm25.stats.sequences == 2


@pytest.mark.parametrize("method", ["sump", "avgp", "topk_mean"])
def test_window_aggregates_run_through_the_engine(tiny_dir: Path, method: str) -> None:
    engine, _ = _engine(tiny_dir, max_length=64)
    doc = "needle " + "filler " * 200
    result = engine.score(
        ["needle"], [doc], passages=PassageConfig(window=32, stride=32, aggregate=method, k=2)
    )
    expected = {"sump": 1.0, "avgp": 1.0 / 7, "topk_mean": 0.5}[method]
    assert result.heads["relevance"][0] == pytest.approx(expected, rel=1e-6)


def test_max_windows_caps_work_and_counts_truncation(tiny_dir: Path) -> None:
    engine, _ = _engine(tiny_dir, max_length=64)
    result = engine.score(
        ["q"], ["filler " * 500], passages=PassageConfig(window=32, stride=32, max_windows=3)
    )
    assert result.stats.sequences == 3
    assert result.stats.truncated_pairs == 1


def test_multi_head_predict_heads(tmp_path: Path) -> None:
    heads = [HeadSpec.graded(3, "grade"), HeadSpec.binary("click")]
    path = build_tiny_checkpoint(tmp_path / "multi", heads=heads)
    ce = CrossEncoder.from_pretrained(path, backend="torch", device="cpu", max_length=64)
    pairs = _pairs(5)
    out = ce.predict_heads(pairs)
    assert set(out) == {"grade", "click"}
    assert np.all((out["grade"] >= 0) & (out["grade"] <= 2))
    np.testing.assert_array_equal(ce.predict(pairs), out["grade"])
