"""Attention maps on a tiny random BERT: shape, tokens, values and a restored model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from crossrank.errors import ConfigError
from crossrank.evaluation.explain import attention_map, encode_pair
from crossrank.inference import CrossEncoder
from crossrank.models.tiny import build_tiny_checkpoint

QUERY = "what is bm25"
DOC = "BM25 is a ranking model. Cats purr."


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("att") / "tiny", seed=2)


@pytest.fixture(scope="module")
def encoder(tiny_path: Path) -> CrossEncoder:
    return CrossEncoder.from_pretrained(tiny_path, backend="torch", device="cpu")


def test_blocks_have_every_layer_head_and_token(encoder: CrossEncoder) -> None:
    amap = attention_map(encoder, QUERY, DOC)
    inputs = encode_pair(encoder, QUERY, DOC, encoder.max_length)
    assert amap.query_tokens == ("what", "is", "bm25")
    assert amap.doc_tokens == inputs.doc_tokens
    assert amap.weights.shape == (2, 2, 3, len(inputs.doc_tokens))
    # Each block is part of a softmax row: non-negative, summing to less than one.
    assert (amap.weights >= 0).all()
    assert (amap.weights.sum(axis=-1) < 1).all()
    assert amap.to_dict()["shape"] == [2, 2, 3, len(inputs.doc_tokens)]


def test_weights_equal_an_eager_transformers_forward(
    encoder: CrossEncoder, tiny_path: Path
) -> None:
    amap = attention_map(encoder, QUERY, DOC)
    reference = AutoModelForSequenceClassification.from_pretrained(
        tiny_path, attn_implementation="eager"
    ).eval()
    inputs = encode_pair(encoder, QUERY, DOC, encoder.max_length)
    with torch.no_grad():
        out = reference(**inputs.tensors(torch.device("cpu")), output_attentions=True)
    q, d = slice(*inputs.query_span), slice(*inputs.doc_span)
    expected = np.stack([layer[0, :, q, d].numpy() for layer in out.attentions])
    np.testing.assert_allclose(amap.weights, expected, atol=1e-6)


def test_means_over_layers_and_heads(encoder: CrossEncoder) -> None:
    amap = attention_map(encoder, QUERY, DOC)
    np.testing.assert_allclose(amap.mean(), amap.weights.mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(amap.mean(layer=1), amap.weights[1].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(amap.mean(layer=0, head=1), amap.weights[0, 1], rtol=1e-6)
    with pytest.raises(ConfigError, match=r"layer must be in \[0, 2\), got 2"):
        amap.mean(layer=2)


def test_model_attention_implementation_is_restored(encoder: CrossEncoder) -> None:
    before = encoder.model.config._attn_implementation
    score_before = encoder.predict([(QUERY, DOC)])
    attention_map(encoder, QUERY, DOC)
    assert encoder.model.config._attn_implementation == before
    assert not encoder.model.module.training
    np.testing.assert_allclose(encoder.predict([(QUERY, DOC)]), score_before, atol=1e-6)
