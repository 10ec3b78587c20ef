"""Pipelined scoring: prefetching, streamed backends, exactness against the sequential path."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from crossrank.errors import BackendUnavailableError, ConfigError
from crossrank.inference.backends import Backend, OnnxBackend, TorchBackend
from crossrank.inference.backends.torch_backend import logits_to_host
from crossrank.inference.batching import plan_batches, prefetch
from crossrank.inference.engine import EngineSettings, ScoringEngine
from crossrank.inference.passages import PassageConfig, aggregate
from crossrank.inference.tokenize import PairTokenizer, TokenBatch
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadLayout, HeadSpec
from crossrank.models.tiny import WORDS, build_tiny_checkpoint

MAX_LENGTH = 96


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def backends(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Backend]:
    out: dict[str, Backend] = {"torch": TorchBackend(CrossEncoderModel.from_pretrained(tiny_dir))}
    try:
        cache = tmp_path_factory.mktemp("onnx")
        out["onnx"] = OnnxBackend(CrossEncoderModel.from_pretrained(tiny_dir), cache_dir=cache)
    except BackendUnavailableError:  # onnxruntime is optional
        pass
    return out


def _pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    queries = [" ".join(rng.choices(WORDS, k=rng.randint(1, 5))) for _ in range(n)]
    docs = [" ".join(rng.choices(WORDS, k=rng.randint(0, 160))) for _ in range(n)]
    return queries, docs


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("crossrank-prefetch")]


def _engine(tiny_dir: Path, backend: Backend, **settings: int) -> ScoringEngine:
    tok = PairTokenizer(AutoTokenizer.from_pretrained(tiny_dir))
    heads = HeadLayout.single(HeadSpec.binary())
    return ScoringEngine(tok, backend, heads, EngineSettings(MAX_LENGTH, **settings))


def _sequential_scores(
    engine: ScoringEngine, queries: list[str], docs: list[str], passages: PassageConfig | None
) -> np.ndarray:
    """The unpipelined path: chunk by chunk, each batch assembled then run with ``forward``."""
    step = engine.settings.chunk_pairs
    return np.concatenate(
        [
            _sequential_chunk(engine, queries[lo : lo + step], docs[lo : lo + step], passages)
            for lo in range(0, len(queries), step)
        ]
    )


def _sequential_chunk(
    engine: ScoringEngine, queries: list[str], docs: list[str], passages: PassageConfig | None
) -> np.ndarray:
    chunk = engine.planner.plan(queries, docs, passages)
    lengths = chunk.row_lengths()
    logits = np.empty((len(lengths), 1), dtype=np.float32)
    spans = chunk.spans
    for rows in plan_batches(lengths, engine.settings.token_budget):
        owner = spans.owner[rows]
        batch = engine.tokenizer.assemble(
            chunk.queries.tokens,
            chunk.docs.tokens,
            query_index=chunk.q_of[owner],
            doc_index=chunk.d_of[owner],
            doc_start=spans.start[rows],
            doc_end=spans.end[rows],
        )
        logits[rows] = engine.backend.forward(batch)
    if passages is None:
        return logits[:, 0]
    return aggregate(logits[:, 0], spans.owner, len(queries), "maxp")


def test_prefetch_keeps_order_and_bounds_work_ahead() -> None:
    made: list[int] = []
    out = []
    stream = prefetch(lambda x: made.append(x) or x * 10, range(20), depth=3)
    for value in stream:
        # the item being consumed, plus at most depth submitted ahead of it
        assert len(made) <= value // 10 + 1 + 3
        out.append(value)
    assert out == [x * 10 for x in range(20)]
    assert list(prefetch(str, [], depth=2)) == []


def test_prefetch_depth_zero_runs_inline() -> None:
    caller = threading.get_ident()
    assert list(prefetch(lambda _: threading.get_ident(), range(3), depth=0)) == [caller] * 3
    with pytest.raises(ConfigError, match="depth must be >= 0, got -1"):
        next(prefetch(str, [1], depth=-1))


def test_prefetch_worker_errors_reach_the_consumer_in_order() -> None:
    def make(x: int) -> int:
        if x == 4:
            raise ValueError("bad item 4")
        return x

    got = []
    with pytest.raises(ValueError, match="bad item 4"):
        got.extend(prefetch(make, range(10), depth=2))
    assert got == [0, 1, 2, 3]
    assert _prefetch_threads() == []


def test_prefetch_stops_its_worker_when_the_consumer_stops() -> None:
    made: list[int] = []

    def slow(x: int) -> int:
        time.sleep(0.01)
        made.append(x)
        return x

    stream = prefetch(slow, range(1000), depth=2)
    assert next(stream) == 0
    assert _prefetch_threads()
    stream.close()  # what the engine's ``closing`` does when the backend raises
    assert _prefetch_threads() == []
    assert len(made) <= 3  # queued work was cancelled, not run


@pytest.mark.parametrize("name", ["torch", "onnx"])
@pytest.mark.parametrize(
    "passages", [None, PassageConfig(window=24, stride=12)], ids=["truncate", "windows"]
)
def test_pipelined_scores_are_bit_identical_to_sequential_forward(
    tiny_dir: Path, backends: dict[str, Backend], name: str, passages: PassageConfig | None
) -> None:
    if name not in backends:
        pytest.skip("onnxruntime is not installed")
    queries, docs = _pairs(70)
    # small budget and chunks: many batches in flight, three chunks tokenised ahead
    reference = _engine(tiny_dir, backends[name], token_budget=512, chunk_pairs=30)
    expected = _sequential_scores(reference, queries, docs, passages)
    for depth in (0, 1, 2, 3):
        engine = _engine(tiny_dir, backends[name], token_budget=512, chunk_pairs=30, prefetch=depth)
        scores = engine.score(queries, docs, passages=passages).heads["relevance"]
        assert scores.dtype == np.float32
        assert np.array_equal(scores, expected), depth


def test_forward_stream_equals_forward_per_batch(
    tiny_dir: Path, backends: dict[str, Backend]
) -> None:
    engine = _engine(tiny_dir, backends["torch"])
    chunk = engine.planner.plan(*_pairs(12), None)
    q, d = chunk.queries.tokens, chunk.docs.tokens
    batches = [
        engine.tokenizer.assemble(
            q, d, query_index=chunk.q_of[rows], doc_index=chunk.d_of[rows],
            doc_start=chunk.spans.start[rows], doc_end=chunk.spans.end[rows],
        )
        for rows in (np.arange(0, 5), np.arange(5, 12), np.arange(3, 4))
    ]  # fmt: skip
    for backend in backends.values():
        streamed = backend.forward_stream(iter(batches))
        assert [s.shape for s in streamed] == [(5, 1), (7, 1), (1, 1)]
        for got, batch in zip(streamed, batches, strict=True):
            assert np.array_equal(got, backend.forward(batch))
        assert backend.forward_stream([]) == []


def test_logits_to_host_splits_one_copy_back_per_batch() -> None:
    parts = [torch.randn(3, 2, dtype=torch.bfloat16), torch.randn(1, 2), torch.randn(4, 2)]
    host = logits_to_host(parts)
    assert [h.dtype for h in host] == [np.float32] * 3
    for got, part in zip(host, parts, strict=True):
        assert np.array_equal(got, part.float().numpy())
    assert logits_to_host([]) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("dtype", "atol"), [("fp32", 1e-6), ("bf16", 1e-3)])
def test_cuda_stream_equals_per_batch_forward(tiny_dir: Path, dtype: str, atol: float) -> None:
    model = CrossEncoderModel.from_pretrained(tiny_dir)
    backend = TorchBackend(model, device="cuda", dtype=dtype)
    engine = _engine(tiny_dir, backend, token_budget=512)
    queries, docs = _pairs(60)
    expected = _sequential_scores(engine, queries, docs, None)
    # same kernels on the same shapes; the tolerance only spares a spurious cuBLAS choice
    scores = engine.score(queries, docs).heads["relevance"]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=atol)


class _FailingBackend(Backend):
    """Fails on the third batch of a stream, after taking two."""

    name = "failing"
    device = "cpu"

    def forward(self, batch: TokenBatch) -> np.ndarray:
        return np.zeros((batch.shape[0], 1), dtype=np.float32)

    def forward_stream(self, batches: Iterable[TokenBatch]) -> list[np.ndarray]:
        stream = iter(batches)
        out = [self.forward(next(stream)), self.forward(next(stream))]
        raise RuntimeError(f"backend died after {len(out)} batches")


def test_backend_failure_propagates_and_stops_the_assembler(tiny_dir: Path) -> None:
    engine = _engine(tiny_dir, _FailingBackend(), token_budget=256)
    with pytest.raises(RuntimeError, match="backend died after 2 batches"):
        engine.score(*_pairs(60))
    assert _prefetch_threads() == []


def test_assembly_failure_propagates_to_the_caller(
    tiny_dir: Path, backends: dict[str, Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tiny_dir, backends["torch"], token_budget=256)
    calls = iter(range(100))
    assemble = engine.tokenizer.assemble

    def flaky(*args: object, **kwargs: object) -> TokenBatch:
        if next(calls) == 3:
            raise MemoryError("no room for batch 3")
        return assemble(*args, **kwargs)

    monkeypatch.setattr(engine.tokenizer, "assemble", flaky)
    with pytest.raises(MemoryError, match="no room for batch 3"):
        engine.score(*_pairs(60))
    assert _prefetch_threads() == []


def test_progress_bar_counts_every_row(
    tiny_dir: Path, backends: dict[str, Backend], capsys: pytest.CaptureFixture[str]
) -> None:
    engine = _engine(tiny_dir, backends["torch"], token_budget=256, chunk_pairs=25)
    engine.score(*_pairs(60), progress=True)
    assert "60/60" in capsys.readouterr().err


def test_prefetch_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="prefetch must be >= 0, got -1"):
        EngineSettings(64, prefetch=-1)
    with pytest.raises(ConfigError, match="first_chunk_pairs"):
        EngineSettings(64, first_chunk_pairs=0)


def test_growing_chunks_score_every_pair_as_fixed_chunks_do(
    tiny_dir: Path, backends: dict[str, Backend]
) -> None:
    queries, docs = _pairs(70)
    fixed = _engine(tiny_dir, backends["torch"], token_budget=512, chunk_pairs=30)
    growing = _engine(
        tiny_dir, backends["torch"], token_budget=512, chunk_pairs=30, first_chunk_pairs=4
    )
    expected = fixed.score(queries, docs)
    result = growing.score(queries, docs)
    # chunks of 4, 8, 16, 30, 12 pairs: batches differ, so only padding noise may differ
    assert np.allclose(result.heads["relevance"], expected.heads["relevance"], atol=1e-6)
    assert result.stats.pairs == 70
    assert result.stats.tokens == expected.stats.tokens
