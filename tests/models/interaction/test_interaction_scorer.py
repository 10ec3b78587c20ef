"""InteractionScorer: the Scorer protocol, batching independence, mode restoration, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from interaction_tiny import TINY_CONFIGS, tiny_model, tiny_tokenizer

from crossrank.errors import ConfigError
from crossrank.models.interaction import InteractionScorer, encode_pairs
from crossrank.protocols import Scorer

QUERIES = ["cats purr", "aspirin fever", "cats purr", "rain in spain", ""]
DOCS = [
    "the cats purr . dogs bark !",
    "aspirin reduces fever . the rain falls",
    "rain falls on the plain",
    "the rain in spain falls on the plain . cats purr ?",
    "dogs bark",
]


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_scores_match_the_model_and_ignore_batching(name: str) -> None:
    model = tiny_model(name).float()
    tokenizer = tiny_tokenizer()
    scorer = InteractionScorer(model, tokenizer, max_query_len=8, max_doc_len=12, batch_size=2)
    assert isinstance(scorer, Scorer)
    scores = scorer.score(QUERIES, DOCS)
    assert scores.dtype == np.float32 and scores.shape == (5,)
    batch = encode_pairs(tokenizer, QUERIES, DOCS, 8, 12)
    with torch.inference_mode():
        expected = model(batch.q_ids, batch.q_mask, batch.d_ids, batch.d_mask).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    one_by_one = [scorer.score([q], [d])[0] for q, d in zip(QUERIES, DOCS, strict=True)]
    np.testing.assert_allclose(scores, one_by_one, rtol=1e-5, atol=1e-5)


def test_restores_training_mode_and_keeps_gradients_off() -> None:
    model = tiny_model("knrm").float().train()
    scorer = InteractionScorer(model, tiny_tokenizer())
    scorer.score(QUERIES[:1], DOCS[:1])
    assert model.training
    model.eval()
    scorer.score(QUERIES[:1], DOCS[:1])
    assert not model.training


def test_empty_and_misaligned_input() -> None:
    scorer = InteractionScorer(tiny_model("knrm").float(), tiny_tokenizer())
    empty = scorer.score([], [])
    assert empty.shape == (0,) and empty.dtype == np.float32
    with pytest.raises(ConfigError, match="pairs must align"):
        scorer.score(["a"], ["b", "c"])


@pytest.mark.parametrize("field", ["max_query_len", "max_doc_len", "batch_size"])
def test_invalid_settings_are_rejected(field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        InteractionScorer(tiny_model("knrm"), tiny_tokenizer(), **{field: 0})
