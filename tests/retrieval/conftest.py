"""Shared fixtures: a tiny random BERT bi-encoder and a tiny corpus (runs in seconds)."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Nothing may be fetched from the hub in tests; set before transformers reads it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, BertTokenizerFast

from crossrank.data.types import Document

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "the", "a", "of", "and", "in", "to", "is", "cat", "cats", "dog", "dogs", "purr", "purrs",
    "bark", "barks", "loud", "loudly", "soft", "softly", "fever", "aspirin", "drug", "drugs",
    "reduce", "reduces", "rain", "spain", "plain", "falls", "mainly", "on", "apple", "pear",
    "red", "green", "fruit", "tree", "trees", "grow", "grows", "water", "sun", "light",
    "protein", "cell", "cells", "gene", "genes",
]  # fmt: skip

CORPUS = [
    Document("d1", "Cats purr softly when they are happy.", "Cats"),
    Document("d2", "Dogs bark loudly at night.", "Dogs"),
    Document("d3", "Aspirin is a drug that reduces fever.", "Aspirin"),
    Document("d4", "The rain in Spain falls mainly on the plain.", ""),
    Document("d5", "Red apple and green pear are fruit that grow on trees.", "Fruit"),
]


def write_tiny_bert(directory: Path, with_normalize: bool | None = True) -> Path:
    """Save a random 2-layer BERT plus a WordPiece tokenizer; optionally a modules.json."""
    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = BertTokenizerFast(tokenizer_object=backend, model_max_length=64)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    directory.mkdir(parents=True, exist_ok=True)
    BertModel(config).eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if with_normalize is not None:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
        ]
        if with_normalize:
            modules.append(
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                }
            )
        (directory / "modules.json").write_text(json.dumps(modules))
    return directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_bert_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same kind of model without modules.json (a plain HF checkpoint)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert_plain"), with_normalize=None)


@pytest.fixture
def corpus() -> list[Document]:
    return list(CORPUS)
