"""ONNX Runtime backends: exactness against torch, int8 closeness, graph rewrite, cache."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank import CrossEncoder
from crossrank.inference.backends import onnx_export
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.tiny import WORDS, build_tiny_checkpoint

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def _pairs(n: int) -> list[tuple[str, str]]:
    rng = random.Random(5)
    return [
        (
            " ".join(rng.choices(WORDS, k=rng.randint(1, 5))),
            " ".join(rng.choices(WORDS, k=rng.randint(0, 150))),
        )
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def torch_scores(tiny_dir: Path) -> np.ndarray:
    ce = CrossEncoder.from_pretrained(tiny_dir, backend="torch", device="cpu", max_length=128)
    return ce.predict(_pairs(50))


def test_auto_on_cpu_is_exact_onnx_with_cls_only_rewrite(
    tiny_dir: Path, onnx_cache: Path, torch_scores: np.ndarray
) -> None:
    ce = CrossEncoder.from_pretrained(
        tiny_dir, device="cpu", max_length=128, cache_dir=onnx_cache, token_budget=512
    )
    assert ce.backend == "onnx"
    np.testing.assert_allclose(ce.predict(_pairs(50)), torch_scores, atol=1e-5, rtol=0)
    meta = json.loads(next(onnx_cache.glob(f"*/{onnx_export.META_FILE}")).read_text())
    assert meta["graph"] == "fused+cls_only"


def test_int8_is_close_to_fp32(tiny_dir: Path, onnx_cache: Path, torch_scores: np.ndarray) -> None:
    ce = CrossEncoder.from_pretrained(
        tiny_dir, backend="onnx-int8", device="cpu", max_length=128, cache_dir=onnx_cache
    )
    got = ce.predict(_pairs(50))
    assert np.all(np.isfinite(got))
    assert np.corrcoef(got, torch_scores)[0, 1] > 0.95
    # Quantisation shifts all scores alike; the ranking is what must survive.
    top_int8, top_fp32 = set(np.argsort(-got)[:10]), set(np.argsort(-torch_scores)[:10])
    assert len(top_int8 & top_fp32) >= 7


def test_second_load_reuses_cached_graph(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    CrossEncoder.from_pretrained(tiny_dir, backend="onnx", device="cpu", cache_dir=tmp_path)
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1 and not any(p.name.startswith(".") for p in entries)

    def fail(*_args: object) -> None:
        raise AssertionError("exported again despite a cache hit")

    monkeypatch.setattr(onnx_export, "_torch_export", fail)
    CrossEncoder.from_pretrained(tiny_dir, backend="onnx", device="cpu", cache_dir=tmp_path)


def test_cache_key_follows_the_weights(tiny_dir: Path) -> None:
    model = CrossEncoderModel.from_pretrained(tiny_dir)
    before = onnx_export.cache_key(model)
    with torch.no_grad():
        model.module.classifier.bias += 1.0
    assert onnx_export.cache_key(model) != before


def test_export_leaves_the_torch_model_in_eval_mode(tiny_dir: Path, tmp_path: Path) -> None:
    model = CrossEncoderModel.from_pretrained(tiny_dir)
    onnx_export.ensure_onnx(model, "fp32", tmp_path)
    assert not any(m.training for m in model.module.modules())
    assert model.module.config._attn_implementation == "sdpa"
