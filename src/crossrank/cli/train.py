"""``crossrank train``: train a reranker from a recipe (TOML) on a BEIR collection.

The model is a cross-encoder (default) or an interaction model (``--arch knrm``,
``conv_knrm``, ``tensor``, ``coattention``; see ``configs/scifact-*.toml``), trained by the
same trainer, objectives and negatives.

Flags override the recipe's top-level fields; the resolved recipe is written to
``OUT/config.toml``. Without ``--config`` a default one-stage recipe is used (judged train
queries, 1 positive + 7 BM25 negatives per group, softmax cross-entropy).

Overrides: ``--data`` -> data.path, ``--train-split`` / ``--dev-split`` -> data.*,
``--backbone`` -> model.backbone, ``--arch`` -> model.arch, ``--seed``, ``--precision``, ``--device``, ``--max-steps``
(caps every stage's steps), ``--keep-checkpoints`` -> output.keep_checkpoints.

Example:
    $ crossrank train --data ../shared/data/scifact --train-split train --dev-split dev \\
        --backbone all-MiniLM-L6-v2 --out runs/scifact --config configs/scifact-gpu.toml
    $ crossrank train --data ../shared/data/scifact --arch knrm --backbone all-MiniLM-L6-v2 \
        --out runs/knrm --config configs/scifact-knrm.toml
    $ torchrun --nproc_per_node 2 -m crossrank.cli.main train ...  # data parallel
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

from crossrank.cli.common import add_quiet_arg, positive_int
from crossrank.training.config import (
    ARCHS,
    PRECISIONS,
    StageConfig,
    TrainConfig,
    load_config,
)
from crossrank.training.pipeline import train

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="BEIR collection directory (data.path)")
    parser.add_argument("--train-split", help="qrels split to train on (default: train)")
    parser.add_argument(
        "--dev-split", help="qrels split for dev evaluation (default: dev; 'none' disables it)"
    )
    parser.add_argument(
        "--backbone",
        help="model directory, hub id or all-MiniLM-L6-v2 (interaction models: their term "
        "embeddings, all-MiniLM-L6-v2 or a word2vec/GloVe text file)",
    )
    parser.add_argument(
        "--dense-model",
        help="bi-encoder directory or hub id for 'dense' negatives (data.dense_model)",
    )
    parser.add_argument("--arch", choices=ARCHS, help="model.arch (default: cross-encoder)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--config", type=Path, help="recipe TOML (default: one qrels stage)")
    parser.add_argument("--seed", type=int, help="seed of data order, negatives and init")
    parser.add_argument("--precision", choices=PRECISIONS, help="autocast precision")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: auto")
    parser.add_argument("--max-steps", type=positive_int, help="cap every stage at N steps")
    parser.add_argument(
        "--time-limit",
        type=float,
        metavar="MINUTES",
        help="stop training after MINUTES of wall-clock time (best dev weights are kept)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoints/last if present"
    )
    parser.add_argument("--keep-checkpoints", action="store_true")
    add_quiet_arg(parser)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else default_config()
    config = apply_overrides(config, args)
    result = train(config, out_dir=args.out, resume=args.resume, quiet=args.quiet)
    dev = result.summary.get("dev")
    logger.info(
        "trained %d steps (%.1f pairs/s) -> %s; dev: %s",
        result.summary["steps"],
        result.summary["pairs_per_s"],
        args.out,
        json.dumps(dev) if dev else "not evaluated",
    )
    return 0


def default_config() -> TrainConfig:
    """One stage on judged train queries, 1 positive + 7 BM25 negatives per group."""
    return TrainConfig(stages=(StageConfig(name="qrels", source="train_qrels"),))


def apply_overrides(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """The recipe with the given command-line flags applied (see the module docstring)."""
    data = config.data
    if args.data is not None:
        data = dataclasses.replace(data, path=str(args.data))
    if args.train_split is not None:
        data = dataclasses.replace(data, train_split=args.train_split)
    if args.dense_model is not None:
        data = dataclasses.replace(data, dense_model=args.dense_model)
    if args.dev_split is not None:
        dev = "" if args.dev_split.lower() == "none" else args.dev_split
        data = dataclasses.replace(data, dev_split=dev)
    changes: dict[str, object] = {"data": data}
    model = {name: getattr(args, name) for name in ("backbone", "arch")}
    model = {name: value for name, value in model.items() if value is not None}
    if model:
        changes["model"] = dataclasses.replace(config.model, **model)
    for name in ("seed", "precision", "device"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.time_limit is not None:
        changes["time_limit_minutes"] = args.time_limit
    if args.keep_checkpoints:
        changes["output"] = dataclasses.replace(config.output, keep_checkpoints=True)
    if args.max_steps is not None:
        changes["stages"] = tuple(
            dataclasses.replace(s, max_steps=min(s.max_steps or args.max_steps, args.max_steps))
            for s in config.stages
        )
    return config.replace(**changes)


__all__ = ["add_arguments", "apply_overrides", "default_config", "run"]
