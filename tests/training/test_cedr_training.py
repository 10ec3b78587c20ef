"""CEDR-KNRM training: the trainable adapter, the recipe's ``arch = "cedr"`` and its output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.inference.cedr import CEDRScorer
from crossrank.models.cedr import CEDRConfig
from crossrank.models.cedr_io import load_cedr
from crossrank.training.cedr import CEDRTrainable, build_cedr
from crossrank.training.config import ModelConfig, parse_config
from crossrank.training.pipeline import train
from crossrank.training.trainable import TrainableModel

RECIPE = """
seed = 3
device = "cpu"
deterministic = true
threads = 1
[model]
arch = "cedr"
backbone = "{backbone}"
max_length = 48
max_query_length = 16
keep_layers = [1]
interaction = {{ layers = [0, 1], cls = "vector" }}
[data]
path = "{data}"
[eval]
top_k = 10
batch_size = 16
[output]
log_every = 2
[[stages]]
name = "qrels"
source = "train_qrels"
group_size = 4
groups_per_step = 4
lr = 1e-3
max_steps = 4
negative_depth = 10
"""


def test_trainable_collates_masks_and_keeps_the_protocol(tiny_backbone: Path) -> None:
    model = build_cedr(
        ModelConfig(backbone=str(tiny_backbone), max_length=40, max_query_length=8),
        CEDRConfig(),
        seed=0,
    )
    assert isinstance(model, CEDRTrainable) and isinstance(model, TrainableModel)
    assert model.head.config.max_length == 40
    queries, docs = ["cats and dogs"] * 2, ["the cat", "gene protein " * 30]
    batch = model.collate(queries, docs)
    assert batch["input_ids"].shape[1] == 40  # the long document fills max_length
    # [CLS] q [SEP] d [SEP]: 3 query tokens, everything else but the specials is document.
    assert batch["query_mask"].sum(1).tolist() == [3, 3]
    assert batch["doc_mask"].sum(1).tolist() == [2, 40 - 3 - 3]
    assert np.array_equal(model.pair_lengths(queries, docs), [8, 40])
    logits = model(**batch)
    logits.sum().backward()
    assert logits.shape == (2,) and model.head.ranker.weight.grad is not None


def test_recipe_with_arch_cedr_trains_and_saves_a_loadable_model(
    tmp_path: Path, tiny_backbone: Path, tiny_data: Path
) -> None:
    config = parse_config(RECIPE.format(backbone=tiny_backbone, data=tiny_data))
    result = train(config, out_dir=tmp_path / "run", quiet=True)
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    assert final["steps"] == 4 and final["dev"]["metric"] == "nDCG@10"
    loaded = load_cedr(tmp_path / "run")
    assert loaded.config.layers == (0, 1) and loaded.config.max_length == 48
    assert loaded.backbone.config.num_hidden_layers == 1
    trained = result.model.eval()
    queries, docs = ["cats and dogs", "gene"], ["the cat is a cell", "protein gene cancer"]
    with torch.no_grad():
        expected = trained(**trained.collate(queries, docs)).numpy()
    np.testing.assert_allclose(CEDRScorer(loaded).score(queries, docs), expected, atol=1e-5)


def test_recipe_checks_cedr_settings(tiny_backbone: Path, tiny_data: Path) -> None:
    text = RECIPE.format(backbone=tiny_backbone, data=tiny_data)
    with pytest.raises(ConfigError, match="unknown key 'layer'"):
        parse_config(text.replace("layers = [0, 1]", "layer = [0, 1]"))
    with pytest.raises(ConfigError, match="cls must be one of"):
        parse_config(text.replace('cls = "vector"', 'cls = "pooled"'))
    with pytest.raises(ConfigError, match=r"model\.max_length"):
        parse_config(text.replace('cls = "vector"', 'cls = "vector", max_length = 64'))
