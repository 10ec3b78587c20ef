"""Tokenisation and padding into PairBatch tensors."""

from __future__ import annotations

import pytest
import torch
from interaction_tiny import PERIOD, WORDS, tiny_tokenizer

from crossrank.errors import ConfigError
from crossrank.models.interaction import (
    WordTokenizer,
    encode_pairs,
    pad_sequences,
    sentence_end_ids,
)


def test_pad_sequences_pads_right_and_masks() -> None:
    ids, mask = pad_sequences([[4, 5, 6], [7], []], pad_id=9)
    assert ids.tolist() == [[4, 5, 6], [7, 9, 9], [9, 9, 9]]
    assert mask.tolist() == [[True] * 3, [True, False, False], [False] * 3]
    assert ids.dtype == torch.int64 and mask.dtype == torch.bool


def test_pad_sequences_keeps_one_column_for_empty_input() -> None:
    ids, mask = pad_sequences([[], []], pad_id=0)
    assert ids.shape == (2, 1) and not mask.any()
    assert pad_sequences([], pad_id=0)[0].shape == (0, 1)


def test_encode_pairs_truncates_and_aligns() -> None:
    batch = encode_pairs(
        tiny_tokenizer(), ["cats purr", "rain"], ["the rain in spain falls", ""], 1, 3
    )
    assert batch.q_ids.tolist() == [[2], [9]]
    assert batch.d_ids.tolist() == [[16, 9, 17], [0, 0, 0]]
    assert batch.d_mask.tolist() == [[True] * 3, [False] * 3]
    with pytest.raises(ConfigError, match="pairs must align"):
        encode_pairs(tiny_tokenizer(), ["a"], [], 4, 4)
    with pytest.raises(ConfigError, match="max_length"):
        encode_pairs(tiny_tokenizer(), ["a"], ["b"], 0, 4)


def test_word_tokenizer_round_trips_tokens() -> None:
    tokenizer = tiny_tokenizer()
    ids = tokenizer.encode(["Aspirin reduces fever!"], 10)[0]
    assert tokenizer.tokens(ids) == ["aspirin", "reduces", "fever", "!"]
    assert sentence_end_ids(tokenizer) == (PERIOD, PERIOD + 1, PERIOD + 2)
    with pytest.raises(ConfigError, match="must start with"):
        WordTokenizer(WORDS[1:])
