"""Shared fixtures of the trainer tests: a tiny random cross-encoder and a tiny BEIR collection.

Both are built in well under a second, so trainer, resume and DDP tests exercise the real
pipeline (BM25 negatives, dev evaluation, checkpoints) in seconds.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

# Nothing may be fetched from the hub in tests; set before transformers reads it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from crossrank.data.beir import write_collection, write_qrels_tsv
from crossrank.data.types import Document, Query
from crossrank.models.tiny import WORDS, build_tiny_checkpoint
from crossrank.training.config import TrainConfig, parse_config

N_DOCS = 48
N_TRAIN = 32
N_DEV = 8

# A subprocess that runs `train` on a recipe file; used by the resume and DDP tests so each
# run has its own process (one thread, deterministic kernels) like a real `crossrank train`.
TRAIN_SCRIPT = textwrap.dedent(
    """
    import faulthandler, os, sys, time
    import torch
    # A hung run (e.g. a stuck collective) prints every thread's stack and exits.
    faulthandler.dump_traceback_later(150, exit=True)
    torch.set_num_threads(1)
    from safetensors.torch import save_model
    from crossrank.training.config import load_config
    from crossrank.training.pipeline import train

    recipe, out, resume, delay = sys.argv[1], sys.argv[2], sys.argv[3] == "1", float(sys.argv[4])
    callbacks = [lambda event: time.sleep(delay)] if delay > 0 else []
    result = train(load_config(recipe), out_dir=out, resume=resume, quiet=True, callbacks=callbacks)
    rank = int(os.environ.get("RANK", "0"))
    # Every rank's final weights, so the DDP test can check the ranks agree.
    save_model(result.model, os.path.join(out, f"rank{rank}.safetensors"))
    """
)


def _sentence(rng: np.random.Generator, n: int) -> str:
    text = " ".join(rng.choice(WORDS, size=n).tolist())
    return text[0].upper() + text[1:] + "."


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("backbone") / "tiny", seed=3)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BEIR collection: 48 docs, 32 train and 8 dev queries, one relevant doc each."""
    rng = np.random.default_rng(7)
    docs = [
        Document(f"d{i}", f"{_sentence(rng, 8)} {_sentence(rng, int(rng.integers(4, 14)))}",
                 _sentence(rng, 3).rstrip("."))
        for i in range(N_DOCS)
    ]  # fmt: skip
    queries, train, dev = [], {}, {}
    for i in range(N_TRAIN + N_DEV):
        words = docs[i].text.split()[:4]
        queries.append(Query(f"q{i}", " ".join(w.strip(".") for w in words)))
        (train if i < N_TRAIN else dev)[f"q{i}"] = {f"d{i}": 1}
    root = tmp_path_factory.mktemp("data") / "tiny"
    write_collection(root, docs, queries, train, "train")
    write_qrels_tsv(root / "qrels" / "dev.tsv", dev)
    return root


RECIPE = """
schema_version = 1
seed = 11
precision = "fp32"
device = "cpu"
deterministic = true
threads = 1

[model]
backbone = "{backbone}"
max_length = 48
max_query_length = 16
hidden_dropout = 0.1
attention_dropout = 0.1
chunk_tokens = 96

[data]
path = "{data}"

[eval]
top_k = 10
batch_size = 16

[output]
checkpoint_every = {checkpoint_every}
log_every = 2
final_weights = "{final_weights}"

[[stages]]
name = "synthetic"
source = "synthetic_title"
group_size = 4
groups_per_step = 4
lr = 1e-3
max_steps = 6
negatives = {{ bm25 = 1.0, random = 0.5 }}
negative_depth = 10

[[stages]]
name = "qrels"
source = "train_qrels"
group_size = 4
groups_per_step = {groups_per_step}
grad_accum = {grad_accum}
lr = 1e-3
epochs = {epochs}
schedule = "cosine"
llrd = 0.8
eval_every = 4
patience = 5
negatives = {{ bm25 = 1.0 }}
negative_depth = 10
losses = [{{ name = "softmax_ce" }}, {{ name = "ranknet", weight = 0.5 }}]
"""


@pytest.fixture
def tiny_recipe(tiny_backbone: Path, tiny_data: Path) -> Callable[..., str]:
    """Recipe text for the tiny run; keyword arguments fill its placeholders."""

    def make(**values: object) -> str:
        defaults = {
            "checkpoint_every": 5,
            "groups_per_step": 4,
            "grad_accum": 1,
            "epochs": 2,
            "final_weights": "best",
        }
        return RECIPE.format(backbone=tiny_backbone, data=tiny_data, **{**defaults, **values})

    return make


@pytest.fixture
def tiny_config(tiny_recipe: Callable[..., str]) -> Callable[..., TrainConfig]:
    def make(**values: object) -> TrainConfig:
        return parse_config(tiny_recipe(**values), source="tiny.toml")

    return make


@pytest.fixture(scope="session")
def train_script(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Command prefix running TRAIN_SCRIPT: append recipe, out dir, resume flag, delay."""
    path = tmp_path_factory.mktemp("scripts") / "train_script.py"
    path.write_text(TRAIN_SCRIPT, encoding="utf-8")
    return [sys.executable, str(path)]
