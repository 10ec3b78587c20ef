"""``crossrank calibrate``: fit temperature or Platt scaling on a split and save it with a model.

The input is a run of the model's raw scores (``crossrank rerank`` output) on a split that is
not the one you report: each judged query's top ``--depth`` documents by model score are the
calibration pairs (unjudged documents count as non-relevant). The fitted calibrator goes to
``<model dir>/calibration.json``, where ``crossrank serve`` applies it. ``--eval-run`` (with
``--eval-split``) prints ECE and Brier before and after on held-out queries.

Example:
    crossrank calibrate --data ../shared/data/scifact --split train \\
        --run runs/model.train.run --method platt --out path/to/model \\
        --eval-split dev --eval-run runs/model.dev.run
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from scipy import special

from crossrank.cli.common import add_data_args, add_quiet_arg, positive_int
from crossrank.data.beir import read_qrels_tsv
from crossrank.data.trec import read_run
from crossrank.data.types import Run
from crossrank.errors import ConfigError
from crossrank.evaluation.calibration import (
    Calibrator,
    brier_score,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    pairs_from_run,
    save_calibrator,
)

logger = logging.getLogger(__name__)

METHODS = ("platt", "temperature")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_args(parser)
    parser.add_argument("--run", required=True, type=Path, help="the model's raw scores on --split")
    parser.add_argument("--method", choices=METHODS, default="platt")
    parser.add_argument(
        "--depth", type=positive_int, default=20, help="top documents per query by model score"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="model directory to write calibration.json into"
    )
    parser.add_argument("--eval-split", help="held-out split to report ECE and Brier on")
    parser.add_argument("--eval-run", type=Path, help="the model's raw scores on --eval-split")
    add_quiet_arg(parser)


def run(args: argparse.Namespace) -> int:
    if (args.eval_split is None) != (args.eval_run is None):
        raise ConfigError("--eval-split and --eval-run go together")
    if not args.out.is_dir():
        raise ConfigError(f"--out {args.out} is not a directory (expected a model directory)")
    if args.eval_split == args.split:
        raise ConfigError(f"--eval-split {args.eval_split!r} is the fit split: pick a held-out one")
    logits, labels = _pairs(args.data, args.split, args.run, args.depth)
    fit = fit_platt if args.method == "platt" else fit_temperature
    calibrator = fit(logits, labels)
    path = save_calibrator(calibrator, args.out)
    print(f"{calibrator} fitted on {labels.size} pairs ({int(labels.sum())} relevant) -> {path}")
    if args.eval_run is not None:
        held_out = _pairs(args.data, args.eval_split, args.eval_run, args.depth)
        _report(args.eval_split, calibrator, *held_out)
    return 0


def top_depth(run: Run, depth: int) -> Run:
    """Each query's ``depth`` highest-scored documents (ties by doc id).

    >>> top_depth({"q": {"a": 1.0, "b": 3.0, "c": 2.0}}, 2)
    {'q': {'b': 3.0, 'c': 2.0}}
    """
    return {
        qid: dict(sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:depth])
        for qid, docs in run.items()
    }


def _pairs(data: Path, split: str, run_path: Path, depth: int) -> tuple[np.ndarray, np.ndarray]:
    qrels = read_qrels_tsv(data / "qrels" / f"{split}.tsv")
    logits, labels = pairs_from_run(top_depth(read_run(run_path), depth), qrels)
    if not 0 < labels.sum() < labels.size:
        raise ConfigError(
            f"{run_path}: the top {depth} of its judged queries hold {int(labels.sum())} relevant "
            f"of {labels.size} pairs; calibration needs both relevant and non-relevant pairs"
        )
    return logits, labels


def _report(split: str, calibrator: Calibrator, logits: np.ndarray, labels: np.ndarray) -> None:
    raw, calibrated = special.expit(logits), calibrator.apply(logits)
    for name, probs in (("raw sigmoid", raw), ("calibrated", calibrated)):
        print(
            f"{split} ({labels.size} pairs) {name:12s} ECE {expected_calibration_error(probs, labels):.4f}"
            f"  Brier {brier_score(probs, labels):.4f}"
        )
