"""Why temperature scaling cannot calibrate a listwise-trained reranker, and what would.

A listwise loss (softmax cross-entropy over a query's candidates) is blind to a constant added
to every logit, so the logit *offset* of such a model is arbitrary and its raw sigmoid is off
by a bias. Temperature scaling (``sigmoid(z / T)``) can only stretch logits about 0; it cannot
move that offset. This script splits a split's judged queries in half at random several times,
fits on one half and measures ECE on the other, for: temperature alone; an offset alone
(``sigmoid(z + c)``, what a pointwise anchor loss in training would pin down); and the offset
followed by a temperature.

Usage:
    python benchmarks/calibration_offset.py --data ../shared/data/scifact --split dev \
        --run runs/ship/minilm-scifact.dev.run --depth 20 --splits 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import optimize, special

from crossrank.data.beir import read_qrels_tsv
from crossrank.data.trec import read_run
from crossrank.evaluation.calibration import expected_calibration_error, fit_temperature


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--run", type=Path, required=True, help="reranker run with raw logits")
    parser.add_argument("--depth", type=int, default=20, help="top candidates per query")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def pairs(run: dict, qrels: dict, queries: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and binary labels of each query's top ``depth`` candidates."""
    logits, labels = [], []
    for q in queries:
        ranked = sorted(run[q].items(), key=lambda kv: -kv[1])[:depth]
        logits += [score for _, score in ranked]
        labels += [int(qrels.get(q, {}).get(d, 0) > 0) for d, _ in ranked]
    return np.array(logits), np.array(labels)


def fit_offset(z: np.ndarray, y: np.ndarray) -> float:
    """c minimising the log-loss of sigmoid(z + c)."""
    loss = lambda c: -np.mean(y * special.log_expit(z + c) + (1 - y) * special.log_expit(-z - c))  # noqa: E731
    return float(optimize.minimize_scalar(loss).x)


def main() -> None:
    args = parse_args()
    run = read_run(args.run)
    qrels = read_qrels_tsv(args.data / "qrels" / f"{args.split}.tsv")
    queries = sorted(q for q in run if q in qrels)
    rng = np.random.default_rng(args.seed)
    ece = expected_calibration_error
    print("split  T-alone  c       T-after-c | ECE on the held-out half: raw  T-alone  c  c+T")
    for i in range(args.splits):
        order = rng.permutation(queries)
        za, ya = pairs(run, qrels, list(order[: len(order) // 2]), args.depth)
        zb, yb = pairs(run, qrels, list(order[len(order) // 2 :]), args.depth)
        t_alone = fit_temperature(za, ya).temperature
        c = fit_offset(za, ya)
        t_after = fit_temperature(za + c, ya).temperature
        print(
            f"{i:5d}  {t_alone:7.3f}  {c:6.2f}  {t_after:9.3f} | "
            f"{ece(special.expit(zb), yb):.4f}  {ece(special.expit(zb / t_alone), yb):.4f}  "
            f"{ece(special.expit(zb + c), yb):.4f}  {ece(special.expit((zb + c) / t_after), yb):.4f}"
        )


if __name__ == "__main__":
    main()
