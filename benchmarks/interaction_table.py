"""Trained rerankers on SciFact dev: nDCG@10 alone and interpolated with BM25, size, speed.

Usage (from the repository root):
    python benchmarks/interaction_table.py --data ../shared/data/scifact \\
        --model K-NRM=runs/knrm --model "Conv-KNRM=runs/conv-knrm" [--model LABEL=DIR ...] \\
        [--run "Cross-encoder=runs/ship/minilm-scifact.dev.run"] \\
        [--top-k 100] [--threads 2] [--out runs/interaction_table.md]

Every model reranks the BM25 top-``k`` of the 102 dev queries. A model directory is a
``crossrank train`` run: an interaction model (``config.json`` with an ``arch``, loaded with
``load_interaction_model``) or a cross-encoder (Hugging Face layout, loaded with
``CrossEncoder``); its ``config.toml`` gives the input lengths used in training. ``--run``
adds a system from a TREC run file of the same candidates (e.g. a cross-encoder reranking
scored elsewhere): its accuracy columns are computed the same way, the others stay empty.

Columns: nDCG@10 of the model alone; interpolated with BM25 (per-query z-scores,
``w * model + (1 - w) * bm25``) with ``w`` chosen on dev over a grid (0.05 .. 1), so the figure
is optimistic; the same with ``w`` chosen by k-fold cross-validation over queries (each fold
scored with the weight best on the other folds); the paired t-test p-value of the
dev-chosen interpolation against BM25; parameters (all / trained); training time from the
run's ``final.json`` (optimiser steps only) and its wall-clock time (``config.toml`` written
at start to ``final.json`` at the end: setup, training and dev evaluations); scoring pairs/s
over all candidate pairs, best of ``--rounds`` passes (tokenisation included, one warm-up
batch excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from crossrank.data.atomic import atomic_write
from crossrank.data.beir import load_corpus, load_queries, read_qrels_tsv
from crossrank.data.trec import read_run
from crossrank.data.types import Qrels, Run
from crossrank.errors import ConfigError
from crossrank.evaluation import evaluate
from crossrank.evaluation.significance import paired_t_test
from crossrank.inference.cross_encoder import CrossEncoder
from crossrank.models.interaction import InteractionScorer, load_interaction_model
from crossrank.protocols import Scorer
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.retrieval.fusion import interpolate
from crossrank.training.config import load_config
from crossrank.training.dev import DevSet

REPO_ROOT = Path(__file__).resolve().parents[1]
METRIC = "nDCG@10"
GRID = tuple(round(0.05 * i, 2) for i in range(1, 21))


@dataclass(frozen=True)
class Loaded:
    """A model ready to score, with its size and training record."""

    scorer: Scorer
    parameters: int
    trained_parameters: int
    train_seconds: float | None
    wall_seconds: float | None


@dataclass(frozen=True)
class Fusion:
    """A model's run interpolated with BM25."""

    interpolated: float  # with the weight best on dev
    weight: float
    cross_validated: float  # with weights chosen by k-fold cross-validation over queries
    p_value: float  # paired t-test of the dev-chosen interpolation against BM25


@dataclass(frozen=True)
class Row:
    label: str
    alone: float
    fusion: Fusion | None = None
    loaded: Loaded | None = None
    pairs_per_s: float | None = None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "../shared/data/scifact")
    parser.add_argument("--split", default="dev")
    parser.add_argument(
        "--model", action="append", default=[], metavar="LABEL=DIR", help="repeatable"
    )
    parser.add_argument(
        "--run", action="append", default=[], metavar="LABEL=FILE", help="TREC run, repeatable"
    )
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="timed passes; the best counts")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    return parser.parse_args()


def load_model(directory: Path, *, batch_size: int, threads: int) -> Loaded:
    """An interaction model or a cross-encoder, with the input lengths of its training run."""
    recipe = (
        load_config(directory / "config.toml") if (directory / "config.toml").is_file() else None
    )
    manifest = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if "arch" in manifest:
        model = load_interaction_model(directory)
        lengths = {}
        if recipe is not None:
            lengths = {
                "max_query_len": recipe.model.max_query_length,
                "max_doc_len": recipe.model.max_length,
            }
        scorer: Scorer = InteractionScorer(
            model, model.embeddings.tokenizer(), batch_size=batch_size, **lengths
        )
        params, trained = model.num_parameters(), model.num_parameters(trainable_only=True)
    else:
        max_length = recipe.model.max_length if recipe is not None else None
        encoder = CrossEncoder.from_pretrained(
            directory, backend="torch", device="cpu", max_length=max_length, threads=threads
        )
        scorer = encoder
        params = trained = sum(p.numel() for p in encoder.model.module.parameters())
    train_seconds, wall_seconds = _training_time(directory)
    return Loaded(scorer, params, trained, train_seconds, wall_seconds)


def _training_time(directory: Path) -> tuple[float | None, float | None]:
    final = directory / "final.json"
    if not final.is_file():
        return None, None
    seconds = float(json.loads(final.read_text(encoding="utf-8"))["train_seconds"])
    started = directory / "config.toml"
    wall = final.stat().st_mtime - started.stat().st_mtime if started.is_file() else None
    return seconds, wall


def timed_scores(
    scorer: Scorer, devset: DevSet, batch_size: int, rounds: int
) -> tuple[np.ndarray, float]:
    """Scores of every dev pair and pairs/s: the best of ``rounds`` passes over all pairs
    (after one warm-up batch), since other jobs on the machine slow single passes down."""
    queries, docs = list(devset.query_texts), list(devset.doc_texts)
    scorer.score(queries[:batch_size], docs[:batch_size])
    best = np.inf
    for _ in range(rounds):
        started = time.perf_counter()
        scores = scorer.score(queries, docs)
        best = min(best, time.perf_counter() - started)
    return np.asarray(scores, dtype=np.float32), len(devset) / best


def per_query(run: Run, qrels: Qrels) -> dict[str, float]:
    return evaluate(run, qrels, [METRIC]).per_query[METRIC]


def fused(model_run: Run, bm25: Run, weight: float, qrels: Qrels) -> dict[str, float]:
    return per_query(interpolate([model_run, bm25], [weight, 1.0 - weight], "zscore"), qrels)


def cross_validated(by_weight: dict[float, dict[str, float]], folds: int) -> float:
    """Mean per-query metric when each fold uses the weight best on the other folds."""
    qids = sorted(next(iter(by_weight.values())))
    fold_of = {qid: i % folds for i, qid in enumerate(qids)}
    values = []
    for fold in range(folds):
        held = [q for q in qids if fold_of[q] == fold]
        rest = [q for q in qids if fold_of[q] != fold]
        best = max(by_weight, key=lambda w: np.mean([by_weight[w][q] for q in rest]))
        values.extend(by_weight[best][q] for q in held)
    return float(np.mean(values))


def fuse(model_run: Run, bm25: Run, qrels: Qrels, folds: int) -> Fusion:
    """Interpolation with BM25 over the weight grid (see the module docstring)."""
    by_weight = {w: fused(model_run, bm25, w, qrels) for w in GRID}
    weight = max(GRID, key=lambda w: (np.mean(list(by_weight[w].values())), -w))
    best = by_weight[weight]
    base = per_query(bm25, qrels)
    diffs = np.array([best[q] - base[q] for q in sorted(base)])
    p_value = paired_t_test(diffs) if np.any(diffs) else 1.0
    interpolated = float(np.mean(list(best.values())))
    return Fusion(interpolated, weight, cross_validated(by_weight, folds), p_value)


def mean_metric(run: Run, qrels: Qrels) -> float:
    return float(np.mean(list(per_query(run, qrels).values())))


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def _count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 100_000 else f"{n:,}"


def markdown(rows: Sequence[Row], top_k: int) -> str:
    head = (
        f"| model | {METRIC} alone | + BM25, w on dev (w) | + BM25, w by CV | p vs BM25 "
        "| parameters (trained) | train time (wall) | pairs/s |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for row in rows:
        m, fusion = row.loaded, row.fusion
        if fusion is None:
            lines.append(f"| {row.label} (top-{top_k}) | {row.alone:.4f} | — | — | — | — | — | — |")
            continue
        cells = [
            row.label,
            f"{row.alone:.4f}",
            f"{fusion.interpolated:.4f} ({fusion.weight:.2f})",
            f"{fusion.cross_validated:.4f}",
            f"{fusion.p_value:.3f}",
            "—" if m is None else f"{_count(m.parameters)} ({_count(m.trained_parameters)})",
            "—" if m is None else f"{_minutes(m.train_seconds)} ({_minutes(m.wall_seconds)})",
            "—" if row.pairs_per_s is None else f"{row.pairs_per_s:,.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def candidates_only(run: Run, bm25: Run) -> Run:
    """``run`` restricted to the BM25 candidates of each dev query (ConfigError if any is
    missing: the run must rerank the same candidates)."""
    missing = [qid for qid in bm25 if not set(bm25[qid]) <= set(run.get(qid, {}))]
    if missing:
        raise ConfigError(
            f"the run lacks BM25 candidates of {len(missing)} queries, e.g. {missing[0]}"
        )
    return {qid: {doc: run[qid][doc] for doc in docs} for qid, docs in bm25.items()}


def dev_set(data: Path, split: str, top_k: int) -> DevSet:
    corpus = load_corpus(data / "corpus.jsonl")
    queries = load_queries(data / "queries.jsonl")
    qrels = read_qrels_tsv(data / "qrels" / f"{split}.tsv")
    texts = {qid: queries[qid].text for qid in qrels}
    run = BM25Retriever.build(corpus).retrieve(texts, top_k)
    docs = {doc_id: doc.full_text for doc_id, doc in corpus.items()}
    return DevSet.build(texts, docs, run, qrels, top_k=top_k)


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    devset = dev_set(args.data, args.split, args.top_k)
    bm25, qrels = devset.first_stage, devset.qrels
    rows = [Row("BM25", mean_metric(bm25, qrels))]
    for spec in args.model:
        label, _, directory = spec.partition("=")
        loaded = load_model(Path(directory), batch_size=args.batch_size, threads=args.threads)
        scores, pairs_per_s = timed_scores(loaded.scorer, devset, args.batch_size, args.rounds)
        run = devset.to_run(scores)
        fusion = fuse(run, bm25, qrels, args.folds)
        rows.append(Row(label, mean_metric(run, qrels), fusion, loaded, pairs_per_s))
        print(f"{label}: {fusion}, {pairs_per_s:.0f} pairs/s", flush=True)
    for spec in args.run:
        label, _, path = spec.partition("=")
        run = candidates_only(read_run(path), bm25)
        rows.append(Row(label, mean_metric(run, qrels), fuse(run, bm25, qrels, args.folds)))
    table = markdown(rows, args.top_k)
    print(f"\nload average: {os.getloadavg()}\n")
    print(table)
    if args.out is not None:
        with atomic_write(args.out) as fh:
            fh.write(table)


if __name__ == "__main__":
    main()
