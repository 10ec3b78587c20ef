"""CUDA-graph replay of the forward pass: shape rounding, refusals, and (on a GPU) exactness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_batches import reversed_pairs_batch

from crossrank.errors import ConfigError
from crossrank.inference import CrossEncoder
from crossrank.inference.backends import TorchBackend
from crossrank.inference.backends.cuda_graphs import GraphedForward, graph_rows
from crossrank.inference.tokenize import TokenBatch
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.tiny import WORDS, build_tiny_checkpoint

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


def test_graph_rows_rounds_up_by_at_most_an_eighth() -> None:
    rows = np.arange(1, 5000)
    rounded = np.array([graph_rows(int(n)) for n in rows])
    assert (rounded >= rows).all()
    assert (rounded - rows <= np.maximum(rows // 8, 0)).all()
    assert (rounded[:15] == rows[:15]).all()  # exact below 16
    # Few distinct graph sizes: eight per power of two.
    assert len(np.unique(rounded[rounded >= 16])) <= 8 * 9


def test_graph_rows_refuses_an_empty_batch() -> None:
    with pytest.raises(ConfigError, match="at least one row"):
        graph_rows(0)


def test_graphs_are_refused_off_cuda(tiny_dir: Path) -> None:
    with pytest.raises(ConfigError, match="CUDA device"):
        GraphedForward(lambda ids, mask, types: ids, torch.device("cpu"))
    model = CrossEncoderModel.from_pretrained(tiny_dir)
    with pytest.raises(ConfigError, match="cuda_graphs needs a CUDA device"):
        TorchBackend(model, device="cpu", cuda_graphs=True)


def _batches(tiny_dir: Path, sizes: list[int]) -> list[TokenBatch]:
    return [
        reversed_pairs_batch(
            tiny_dir,
            [" ".join(WORDS[(i + k) % 20 : (i + k) % 20 + 3 + i % 7]) for i in range(n)],
            pad_multiple=8,
        )
        for k, n in enumerate(sizes)
    ]


@needs_cuda
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_graph_replay_gives_the_eager_logits(tiny_dir: Path, dtype: str) -> None:
    # 17 rows go to an 18-row graph whose last row keeps earlier inputs; 5 rows reuse the
    # 5-row graph after a larger batch has run.
    batches = _batches(tiny_dir, [17, 5, 30, 5, 17])
    eager = TorchBackend(CrossEncoderModel.from_pretrained(tiny_dir), device="cuda", dtype=dtype)
    graphed = TorchBackend(
        CrossEncoderModel.from_pretrained(tiny_dir), device="cuda", dtype=dtype, cuda_graphs=True
    )
    expected = eager.forward_stream(batches)
    got = graphed.forward_stream(batches)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
    assert graphed._graphed is not None
    assert len(graphed._graphed.shapes) == len(
        {(graph_rows(b.shape[0]), b.shape[1]) for b in batches}
    )


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_cross_encoder_refuses_graphs_off_cuda(tiny_dir: Path, backend: str) -> None:
    with pytest.raises(ConfigError, match="cuda_graphs needs"):
        CrossEncoder.from_pretrained(tiny_dir, backend=backend, device="cpu", cuda_graphs=True)
