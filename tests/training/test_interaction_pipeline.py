"""Interaction models through the real trainer: ``train``, dev evaluation and ``--arch``."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank.cli.main import main
from crossrank.data.beir import load_corpus, load_queries, read_qrels_tsv
from crossrank.evaluation import evaluate
from crossrank.models.interaction import InteractionScorer, load_interaction_model
from crossrank.models.tiny import WORDS
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.training.config import load_config, parse_config
from crossrank.training.interaction import load_term_embeddings
from crossrank.training.pipeline import train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# The issue-7 recipes: recipe file -> (arch, tensor factorisation).
INTERACTION_RECIPES = {
    "scifact-knrm.toml": ("knrm", None),
    "scifact-conv-knrm.toml": ("conv_knrm", None),
    "scifact-tensor-full.toml": ("tensor", "full"),
    "scifact-tensor-low-rank.toml": ("tensor", "low_rank"),
    "scifact-tensor-cp.toml": ("tensor", "cp"),
    "scifact-tensor-tucker.toml": ("tensor", "tucker"),
    "scifact-coattention.toml": ("coattention", None),
}

RECIPE = """
seed = 5
device = "cpu"
deterministic = true
threads = 1
[model]
arch = "{arch}"
backbone = "{vectors}"
max_length = 24
max_query_length = 6
train_embeddings = {train_embeddings}
interaction = {interaction}
[data]
path = "{data}"
[eval]
top_k = 10
batch_size = 7
[output]
log_every = 2
[[stages]]
name = "titles"
source = "synthetic_title"
group_size = 4
groups_per_step = 4
max_groups = 16
lr = 0.01
[[stages]]
name = "queries"
source = "train_qrels"
group_size = 4
groups_per_step = 8
lr = 0.01
epochs = 2
eval_every = 2
negatives = {{ bm25 = 1.0, random = 1.0 }}
negative_depth = 10
"""


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """word2vec text vectors for the words of the tiny corpus (and '.')."""
    rng = np.random.default_rng(0)
    rows = [f"{w} " + " ".join(f"{v:.4f}" for v in rng.normal(size=8)) for w in [*WORDS, "."]]
    path = tmp_path_factory.mktemp("vectors") / "vectors.txt"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def recipe(vectors: Path, tiny_data: Path) -> Callable[..., str]:
    def make(arch: str = "knrm", interaction: str = "{}", train_embeddings: str = "false") -> str:
        return RECIPE.format(arch=arch, vectors=vectors, data=tiny_data, interaction=interaction,
                             train_embeddings=train_embeddings)  # fmt: skip

    return make


def _dev_ndcg(out: Path, data: Path, top_k: int, max_query: int, max_doc: int) -> float:
    """nDCG@10 of the saved model reranking BM25 top-k, recomputed outside the trainer."""
    model = load_interaction_model(out)
    qrels = read_qrels_tsv(data / "qrels" / "dev.tsv")
    queries = {q: load_queries(data / "queries.jsonl")[q].text for q in qrels}
    corpus = load_corpus(data / "corpus.jsonl")
    run = BM25Retriever.build(corpus).retrieve(queries, top_k)
    pairs = [(q, d) for q in run for d in run[q]]
    scorer = InteractionScorer(model, model.embeddings.tokenizer(), max_query_len=max_query,
                               max_doc_len=max_doc)  # fmt: skip
    scores = scorer.score([queries[q] for q, _ in pairs], [corpus[d].full_text for _, d in pairs])
    reranked: dict[str, dict[str, float]] = {q: {} for q in run}
    for (q, d), s in zip(pairs, scores.tolist(), strict=True):
        reranked[q][d] = s
    return evaluate(reranked, qrels, ["nDCG@10"]).means["nDCG@10"]


@pytest.mark.parametrize(
    "case",
    [
        ("knrm", "{}", "true"),
        ("conv_knrm", "{ n_filters = 4 }", "false"),
        (
            "tensor",
            '{ factorization = "low_rank", hidden_dim = 6, pooling = "token_max" }',
            "false",
        ),
        ("coattention", "{ hidden_dim = 8, ffn_dim = 8 }", "false"),
    ],
    ids=lambda case: case[0],
)
def test_interaction_models_train_with_the_trainer(
    tmp_path: Path, recipe: Callable[..., str], tiny_data: Path, case: tuple[str, str, str]
) -> None:
    arch, interaction, train_embeddings = case
    config = parse_config(recipe(arch, interaction, train_embeddings), source="r.toml")
    out = tmp_path / "run"
    result = train(config, out_dir=out, quiet=True)
    final = json.loads((out / "final.json").read_text())
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in events if e["event"] == "train"]
    assert losses and all(np.isfinite(losses))
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [4, 6, 8, 10, 12]  # end of stage 1, then every 2 steps
    assert final["weights"] == "best_dev" and final["dev"] == max(evals, key=lambda e: e["model"])
    assert 0.0 <= final["dev"]["model"] <= 1.0 and final["dev"]["first_stage"] > 0.3

    # The run directory is a loadable interaction model holding the best dev weights: the
    # trainer's dev number is reproduced by InteractionScorer with the recipe's lengths.
    assert load_config(out / "config.toml") == config
    loaded = load_interaction_model(out)
    assert type(loaded).arch == arch
    torch.testing.assert_close(loaded.state_dict(), result.model.model.state_dict())
    assert _dev_ndcg(out, tiny_data, 10, 6, 24) == pytest.approx(final["dev"]["model"], abs=1e-9)
    if train_embeddings == "true":  # embeddings moved; frozen ones stay put
        start = load_interaction_model(out).embeddings.embedding.weight
        assert not torch.equal(start, _initial_embeddings(config.model.backbone))


def _initial_embeddings(path: str) -> torch.Tensor:
    return load_term_embeddings(path, trainable=False).embedding.weight


def test_frozen_embeddings_do_not_move(tmp_path: Path, recipe: Callable[..., str]) -> None:
    config = parse_config(recipe("knrm"), source="r.toml")
    result = train(config, out_dir=tmp_path / "run", quiet=True)
    torch.testing.assert_close(
        result.model.model.embeddings.embedding.weight,
        _initial_embeddings(config.model.backbone),
        rtol=0,
        atol=0,
    )
    assert result.model.model.ranker.weight.abs().sum() > 0


def test_cli_arch_flag_trains_an_interaction_model(
    tmp_path: Path, recipe: Callable[..., str], tiny_data: Path, vectors: Path
) -> None:
    # A cross-encoder recipe (no arch) turned into K-NRM by the flag.
    path = tmp_path / "recipe.toml"
    path.write_text(recipe("knrm").replace('arch = "knrm"\n', "").replace("interaction = {}\n", "")
                    .replace("train_embeddings = false\n", ""))  # fmt: skip
    assert load_config(path).model.arch == "cross-encoder"
    out = tmp_path / "run"
    code = main(["train", "--data", str(tiny_data), "--arch", "knrm", "--backbone", str(vectors),
                 "--out", str(out), "--config", str(path), "--max-steps", "2", "--quiet"])  # fmt: skip
    assert code == 0
    written = tomllib.loads((out / "config.toml").read_text())
    assert written["model"]["arch"] == "knrm"
    assert json.loads((out / "final.json").read_text())["steps"] == 4
    assert type(load_interaction_model(out)).__name__ == "KNRM"


def test_cli_arch_flag_rejects_cross_encoder_only_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "recipe.toml"
    path.write_text("[model]\nkeep_layers = [0]\n[[stages]]\nname = 's'\nsource = 'train_qrels'\n")
    code = main(["train", "--arch", "knrm", "--out", str(tmp_path / "o"), "--config", str(path),
                 "--quiet"])  # fmt: skip
    assert code == 2
    assert "model.keep_layers applies to the cross-encoder only" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(INTERACTION_RECIPES))
def test_repo_interaction_recipes_load(name: str) -> None:
    config = load_config(CONFIGS / name)
    arch, factorization = INTERACTION_RECIPES[name]
    assert (
        config.model.arch == arch and config.model.interaction.get("factorization") == factorization
    )
    assert config.model.backbone == "all-MiniLM-L6-v2" and config.model.train_embeddings
    assert config.device == "cpu" and config.eval.metric == "nDCG@10"
    assert config.stages[-1].source == "train_qrels"
