"""Report configuration: system parsing, validation, settings and a reproducible command line."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from crossrank.cli import report as report_cli
from crossrank.errors import ConfigError
from crossrank.evaluation.efficiency import PowerModel
from crossrank.evaluation.report import (
    ReportConfig,
    StatsSettings,
    SystemSpec,
    command_line,
    parse_system,
    parse_systems,
)
from crossrank.evaluation.report.settings import report_settings

DATA = Path("examples/tiny")


def _config(**changes: object) -> ReportConfig:
    base: dict[str, object] = {
        "data": DATA,
        "split": "test",
        "systems": parse_systems(["bm25", "dense", "rerank"]),
        "model": "models/tiny",
    }
    return ReportConfig(**{**base, **changes})  # type: ignore[arg-type]


def test_parse_system() -> None:
    assert parse_system("hybrid") == SystemSpec("hybrid", "hybrid")
    run = parse_system("run:runs/my.run")
    assert (run.name, run.kind, run.path, run.spelling) == (
        "my", "run", Path("runs/my.run"), "run:runs/my.run",
    )  # fmt: skip
    for bad in ("bm26", "run:", ""):
        with pytest.raises(ConfigError, match="unknown system"):
            parse_system(bad)
    with pytest.raises(ConfigError, match="twice"):
        parse_systems(["bm25", "run:x/bm25.run"])
    with pytest.raises(ConfigError, match="at least one"):
        parse_systems([])


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"depths": (10, 200)}, "must not exceed --top-k"),
        ({"depths": (10, 10)}, "distinct"),
        ({"max_lengths": ()}, "distinct"),
        ({"top_k": 0}, "top_k must be > 0"),
        ({"backends": ("torch", "tensorrt")}, "backends"),
        ({"model": None}, "needs --model"),
        ({"baseline": "hybrid"}, "baseline 'hybrid'"),
        ({"metrics": ("nDCG@x",)}, "unsupported metric"),
        ({"perturbations": ("query_typos", "rot13")}, "rot13"),
        ({"strength": 0.0}, "strength"),
        ({"min_gain_per_s": -0.1}, "min_gain_per_s"),
        ({"fit_split": "test"}, "is the report split"),
        ({"first_stage": SystemSpec("rerank", "rerank")}, "cannot be 'rerank'"),
    ],
)
def test_config_validation(changes: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _config(**changes)


def test_depths_always_include_top_k_and_primary_metric_is_canonical() -> None:
    config = _config(top_k=50, depths=(20, 5), metrics=("MRR@10", "nDCG@10"))
    assert config.depths_with_top_k == (5, 20, 50)
    assert config.primary_metric == "RR@10"
    assert config.wants_rerank
    assert not _config(systems=parse_systems(["bm25"]), model=None).wants_rerank


def test_command_line_round_trips_through_the_cli_parser(tmp_path: Path) -> None:
    config = _config(
        systems=parse_systems(["bm25", "run:runs/x y.run", "rerank"]),
        first_stage=parse_system("dense"),
        top_k=40,
        depths=(5, 10),
        max_lengths=(128, 256),
        backends=("torch", "onnx"),
        threads=2,
        latency_queries=7,
        metrics=("nDCG@10", "AP"),
        stats=StatsSettings("bootstrap", 500, 0.9, seed=4),
        fit_split=None,
        perturbations=(),
        robustness_top_k=9,
        strength=0.5,
        dense_model="models/bi",
        dense_max_length=128,
        dense_cache_dir=tmp_path / "cache",
        power=PowerModel(7.5, 300.0),
        min_gain_per_s=0.01,
    )
    command = command_line(config, tmp_path / "out")
    words = shlex.split(command)
    assert words[:2] == ["crossrank", "report"]
    parser = argparse.ArgumentParser()
    report_cli.add_arguments(parser)
    args = parser.parse_args(words[2:])
    assert args.out == tmp_path / "out"
    assert report_cli.config_from_args(args) == config


def test_settings_rows_name_every_choice() -> None:
    rows = dict(report_settings(_config(fit_split="train", fit_queries=12)))
    assert rows["systems"] == "bm25 dense rerank"
    assert rows["depths"] == "10 20 50 100"
    assert rows["calibration fit"] == "train (12 queries, BM25 top 100)"
    assert dict(report_settings(_config(fit_split=None)))["calibration fit"] == "none"
    assert "4.375 W per busy CPU core" in rows["power model"]
