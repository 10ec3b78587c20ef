"""TorchBackend precision modes: a cast module, or fp32 weights under autocast (mixed)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_batches import reversed_pairs_batch

from crossrank.errors import ConfigError
from crossrank.inference.backends import TorchBackend
from crossrank.inference.tokenize import TokenBatch
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.tiny import WORDS, build_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


def _logits(tiny_dir: Path, **options: object) -> tuple[TorchBackend, np.ndarray]:
    backend = TorchBackend(CrossEncoderModel.from_pretrained(tiny_dir), **options)
    return backend, backend.forward(_batch(tiny_dir))


def _batch(tiny_dir: Path) -> TokenBatch:
    return reversed_pairs_batch(tiny_dir, [" ".join(WORDS[i : i + 9]) for i in range(12)])


def test_mixed_keeps_fp32_weights_and_stays_close_to_fp32(tiny_dir: Path) -> None:
    _, exact = _logits(tiny_dir)
    backend, mixed = _logits(tiny_dir, dtype="bf16", mixed=True)
    assert backend.name == "torch-bf16-mixed"
    params = {p.dtype for p in backend._model.module.parameters()}
    assert params == {torch.float32}
    assert mixed.dtype == np.float32
    # bf16 matrix products (8 significant bits) on fp32 weights and residuals
    np.testing.assert_allclose(mixed, exact, rtol=0, atol=5e-2)
    assert not np.array_equal(mixed, exact)  # the products did run in bf16


def test_cast_module_runs_its_body_in_the_half_dtype(tiny_dir: Path) -> None:
    backend, _ = _logits(tiny_dir, dtype="bf16")
    assert backend.name == "torch-bf16"
    body = backend._model.module.bert
    assert {p.dtype for n, p in body.named_parameters() if "pooler" not in n} == {torch.bfloat16}


def test_mixed_needs_a_half_dtype(tiny_dir: Path) -> None:
    with pytest.raises(ConfigError, match="mixed precision needs dtype 'bf16' or 'fp16'"):
        TorchBackend(CrossEncoderModel.from_pretrained(tiny_dir), dtype="fp32", mixed=True)


def test_half_cast_keeps_the_head_in_fp32_so_scores_keep_their_resolution(
    tiny_dir: Path,
) -> None:
    backend, logits = _logits(tiny_dir, dtype="bf16")
    module = backend._model.module
    assert backend.fp32_heads == ["bert.pooler", "classifier"]
    assert module.classifier.weight.dtype == torch.float32
    assert module.bert.pooler.dense.weight.dtype == torch.float32
    assert module.bert.encoder.layer[0].attention.self.query.weight.dtype == torch.bfloat16
    # fp32 logits: not all of them survive a round trip through bf16
    as_bf16 = torch.from_numpy(logits).to(torch.bfloat16).float().numpy()
    assert not np.array_equal(as_bf16, logits)
    assert len(np.unique(logits)) == logits.size


def test_fp32_and_mixed_backends_keep_no_separate_heads(tiny_dir: Path) -> None:
    assert _logits(tiny_dir)[0].fp32_heads == []
    assert _logits(tiny_dir, dtype="bf16", mixed=True)[0].fp32_heads == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("graphs", [False, True])
def test_cuda_stream_does_not_wait_for_the_gpu_per_batch(tiny_dir: Path, graphs: bool) -> None:
    model = CrossEncoderModel.from_pretrained(tiny_dir)
    backend = TorchBackend(model, device="cuda", dtype="bf16", cuda_graphs=graphs)
    assert backend.expanded_mask  # without it, transformers syncs on the mask in each forward
    batch = _batch(tiny_dir)
    backend.forward_stream([batch])  # warm-up: first-call set-up (and a capture) may sync

    def syncs(n: int) -> tuple[list[str], list[np.ndarray]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                outputs = backend.forward_stream([batch] * n)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return [
            f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)
        ], outputs

    syncs(1)  # on an H200 the first call under the debug mode reported one more, in torch.cuda
    one, _ = syncs(1)
    four, outputs = syncs(4)
    # The device-to-host copy of all logits at the end waits; nothing per batch does.
    assert len(four) == len(one) == 1, (one, four)
    np.testing.assert_array_equal(outputs[0], outputs[3])
