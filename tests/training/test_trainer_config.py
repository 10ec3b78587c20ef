"""Recipes: strict TOML parsing, validation errors that name the key, round trips, repo files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from crossrank.errors import ConfigError, MissingDataError
from crossrank.training.config import TrainConfig, load_config, parse_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MINIMAL = '[[stages]]\nname = "s"\nsource = "train_qrels"\n'


def test_round_trip_through_toml(tiny_config: Callable[..., TrainConfig]) -> None:
    config = tiny_config()
    again = parse_config(config.to_toml(), source="again.toml")
    assert again == config
    assert again.stages[1].losses[1].name == "ranknet"
    assert again.stages[1].losses[1].weight == 0.5
    assert dict(again.stages[0].negatives) == {"bm25": 1.0, "random": 0.5}


def test_defaults_of_a_minimal_recipe() -> None:
    config = parse_config(MINIMAL)
    stage = config.stages[0]
    assert (stage.group_size, stage.groups_per_step, stage.lr, stage.schedule) == (
        8, 8, 2e-5, "linear",
    )  # fmt: skip
    assert config.precision == "fp32" and config.output.max_shard_size == "15MB"
    assert config.model.keep_layers is None and config.data.dev_split == "dev"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL + "lrr = 1\n", "unknown key 'stages[0].lrr'"),
        ("[model]\nbackbon = 'x'\n" + MINIMAL, "unknown key 'model.backbon'"),
        ("sede = 1\n" + MINIMAL, "unknown key 'sede'"),
        (MINIMAL + "lr = 'fast'\n", "stages[0].lr must be of type float, got 'fast'"),
        (MINIMAL + "group_size = 2.5\n", "stages[0].group_size must be of type int"),
        ("[model]\nkeep_layers = [2, 0]\n" + MINIMAL, "keep_layers must be distinct, increasing"),
        ('precision = "fp8"\n' + MINIMAL, "precision must be one of"),
        (MINIMAL + "grad_accum = 3\n", "must be divisible by grad_accum"),
        (MINIMAL + "negatives = { colbert = 1.0 }\n", "unsupported sources ['colbert']"),
        (MINIMAL + "lr = -1.0\n", "lr must be > 0"),
        (MINIMAL + 'losses = [{ name = "nope" }]\n', "unknown loss 'nope'"),
        (MINIMAL + 'schedule = "step"\n', "schedule must be one of"),
        ("schema_version = 2\n" + MINIMAL, "schema_version 2 is not supported"),
        ('[[stages]]\nsource = "train_qrels"\n', "missing required key 'stages[0].name'"),
        ("seed = 1\n", "missing required key 'stages'"),
        (MINIMAL + MINIMAL, "stage names must be unique"),
        ("[model]\nmax_length = 32\nmax_query_length = 64\n" + MINIMAL, "max_query_length"),
        ("[output]\nfinal_weights = 'first'\n" + MINIMAL, "final_weights must be one of"),
        ("[output]\nmax_shard_size = '15 parsecs'\n" + MINIMAL, "max_shard_size must be a size"),
        ("[model]\nchunk_tokens = 0\n" + MINIMAL, "model.chunk_tokens must be > 0"),
        ("[model]\nhead_bias = nan\n" + MINIMAL, "model.head_bias must be a finite number"),
        ("[model]\narch = 'knrm'\nhead_bias = -3.0\n" + MINIMAL, "for arch 'cross-encoder' only"),
        ("this is = not toml", "invalid TOML"),
    ],
)
def test_invalid_recipes_name_the_file_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="bad.toml")
    assert str(err.value).startswith("bad.toml: ")
    assert message in str(err.value)


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match="not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("name", ["scifact-gpu.toml", "scifact-gpu-wide.toml", "scifact-cpu.toml"])
def test_repo_recipes_load(name: str) -> None:
    config = load_config(CONFIGS / name)
    sources = [s.source for s in config.stages]
    assert sources[0].startswith("synthetic_") and sources[-1] == "train_qrels"
    assert config.output.max_shard_size == "15MB"
    assert config.model.backbone == "all-MiniLM-L6-v2"
    if name == "scifact-cpu.toml":
        assert config.model.keep_layers == (0, 2, 5) and config.model.max_length == 256
    else:
        assert config.precision == "bf16" and config.model.max_length == 512
