"""Tiny random cross-encoder checkpoints for tests and examples (seconds to build and run).

:func:`build_tiny_checkpoint` writes a real Hugging Face directory (2-layer BERT, a
WordPiece tokenizer whose vocabulary spells any ASCII text, safetensors weights), so tests of
loading, scoring, training or the CLI exercise the same code paths as a full-size model.

Example:
    >>> path = build_tiny_checkpoint(tmp_path / "tiny")  # doctest: +SKIP
    >>> CrossEncoder.from_pretrained(path).predict([("q", "d")])  # doctest: +SKIP
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    PreTrainedTokenizerFast,
)

from crossrank.models.cross_encoder import save_hf_directory
from crossrank.models.heads import HeadLayout, HeadSpec

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Whole words besides single characters, so typical test sentences stay short.
WORDS = (
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "what",
    "how",
    "cat",
    "cats",
    "dog",
    "dogs",
    "bm25",
    "rank",
    "ranking",
    "query",
    "document",
    "search",
    "model",
    "relevant",
    "passage",
    "cell",
    "cells",
    "gene",
    "protein",
    "cancer",
    "study",
    "results",
    "effect",
    "blood",
    "needle",
    "haystack",
    "filler",
    "text",
    "long",
    "short",
    "word",
    "words",
    "science",
)


def tiny_vocab(words: Sequence[str] = WORDS) -> list[str]:
    """Special tokens, ASCII characters (word-initial and ``##`` continuation) and ``words``."""
    chars = string.ascii_lowercase + string.digits + string.punctuation
    return [
        *SPECIAL_TOKENS,
        *chars,
        *(f"##{c}" for c in string.ascii_lowercase + string.digits),
        *words,
    ]


def tiny_tokenizer(words: Sequence[str] = WORDS) -> PreTrainedTokenizerFast:
    """A BERT-style fast tokenizer over :func:`tiny_vocab`."""
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tiny_vocab(words)))}
    rust = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    rust.normalizer = normalizers.BertNormalizer(lowercase=True)
    rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    rust.decoder = decoders.WordPiece()
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    rust.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=rust,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def tiny_config(vocab_size: int, num_labels: int = 1, max_positions: int = 512) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=max_positions,
        num_labels=num_labels,
        type_vocab_size=2,
        # Wider than BERT's 0.02 so a random tiny model's scores depend visibly on the input.
        initializer_range=0.1,
    )


def build_tiny_checkpoint(
    directory: str | Path,
    *,
    heads: Sequence[HeadSpec] | None = None,
    seed: int = 0,
    plain_encoder: bool = False,
    max_positions: int = 512,
) -> Path:
    """Write a tiny random BERT cross-encoder (or, with ``plain_encoder``, a bare BertModel)."""
    tokenizer = tiny_tokenizer()
    layout = HeadLayout.of(heads or [HeadSpec.binary()])
    config = tiny_config(len(tokenizer), layout.num_labels, max_positions)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if plain_encoder:
            module = BertModel(config)
        else:
            config.id2label = layout.id2label()
            config.label2id = {v: k for k, v in config.id2label.items()}
            config.crossrank = layout.to_config()
            module = BertForSequenceClassification(config)
    return save_hf_directory(directory, module.eval(), tokenizer)
