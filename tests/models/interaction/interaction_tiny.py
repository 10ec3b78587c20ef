"""Tiny float64 models over a 20-word vocabulary (dim 4): every test runs in well under a second.

Imported by the tests as ``interaction_tiny`` (a unique name, so it never clashes with another
directory's helpers on sys.path).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from crossrank.models.interaction import (
    CoAttentionConfig,
    ConvKNRMConfig,
    InteractionModel,
    KNRMConfig,
    NeuralTensorConfig,
    TermEmbeddings,
    WordTokenizer,
    build_interaction_model,
)

WORDS = (
    "<pad>", "<unk>", "cats", "purr", "dogs", "bark", "aspirin", "reduces", "fever", "rain",
    "spain", "falls", "plain", ".", "!", "?", "the", "in", "on", "a",
)  # fmt: skip
PERIOD = WORDS.index(".")

TINY_CONFIGS = {
    "knrm": KNRMConfig(),
    "conv_knrm": ConvKNRMConfig(n_filters=3),
    "tensor": NeuralTensorConfig(factorization="full", slices=2, hidden_dim=3),
    "coattention": CoAttentionConfig(
        hidden_dim=4, ffn_dim=6, rounds=2, sentence_end_ids=(PERIOD, PERIOD + 1, PERIOD + 2)
    ),
}
TENSOR_VARIANTS = {
    f"tensor-{f}-{p}": NeuralTensorConfig(
        factorization=f, slices=2, rank=2, slice_rank=2, hidden_dim=3, pooling=p
    )
    for f in ("full", "low_rank", "cp", "tucker")
    for p in ("mean", "token_max", "token_mean")
}
ALL_CONFIGS = {**TINY_CONFIGS, **TENSOR_VARIANTS}


def tiny_embeddings(trainable: bool = True, seed: int = 0) -> TermEmbeddings:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(len(WORDS), 4, generator=generator, dtype=torch.float64)
    return TermEmbeddings.from_tensor(
        weight, trainable=trainable, source="word2vec", vocabulary=WORDS
    )


def tiny_model(name: str, seed: int = 0, trainable: bool = True) -> InteractionModel:
    """A float64 model of the named tiny config (keys of ALL_CONFIGS)."""
    config = ALL_CONFIGS[name]
    torch.manual_seed(seed)
    arch = name.split("-", maxsplit=1)[0]
    return build_interaction_model(arch, tiny_embeddings(trainable, seed), config).double()


def tiny_tokenizer() -> WordTokenizer:
    return WordTokenizer(WORDS)
