"""CEDR-KNRM on a BEIR split: rerank BM25's top-k, nDCG@10, parameters and scoring speed.

Loads a CEDR model directory (a ``crossrank train`` run with ``model.arch = "cedr"`` or a
``save_cedr`` directory), retrieves each judged query's BM25 top-k, scores every pair with
:class:`~crossrank.inference.cedr.CEDRScorer` (timed after a small untimed warm-up) and
reports nDCG@10 of BM25 and of the model alone, the model's parameter counts, the scoring
throughput and, when the directory holds a training run's final.json, its training time.
The BM25 and model runs are written as TREC files for ``interpolation_sweep.py``.
``--overhead-pairs N`` also times the first N pairs with the plain cross-encoder forward of
the same backbone (torch, fp32, same length and token budget; two interleaved rounds), so
the cost of the hidden states and kernel pooling shows as a ratio.

Usage:
    python benchmarks/eval_cedr.py --model runs/cedr-cpu --data ../shared/data/scifact \
        --split dev --top-k 100 --runs-dir runs/cedr-cpu-eval
    python benchmarks/interpolation_sweep.py --data ../shared/data/scifact --split dev \
        --first runs/cedr-cpu-eval/bm25.run --model runs/cedr-cpu-eval/cedr.run
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from crossrank.data.atomic import atomic_write
from crossrank.data.beir import load_collection
from crossrank.data.trec import write_run
from crossrank.data.types import Run
from crossrank.evaluation import evaluate
from crossrank.inference.cedr import CEDRScorer
from crossrank.inference.cross_encoder import CrossEncoder
from crossrank.retrieval.bm25 import BM25Retriever

os.environ.setdefault("HF_HUB_OFFLINE", "1")
METRIC = "nDCG@10"
WARMUP_PAIRS = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="CEDR model directory")
    parser.add_argument("--data", type=Path, required=True, help="BEIR collection directory")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--queries", type=int, help="only the first N judged queries")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--token-budget", type=int, help="padded tokens per batch")
    parser.add_argument("--overhead-pairs", type=int, default=0, help="pairs to time vs the CE")
    parser.add_argument("--runs-dir", type=Path, help="write bm25.run and cedr.run here")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    return parser.parse_args()


def _pairs(run: Run) -> tuple[list[str], list[str]]:
    qids = [qid for qid, ranked in run.items() for _ in ranked]
    doc_ids = [doc_id for ranked in run.values() for doc_id in ranked]
    return qids, doc_ids


def _to_run(qids: list[str], doc_ids: list[str], scores: np.ndarray) -> Run:
    run: Run = {}
    for qid, doc_id, score in zip(qids, doc_ids, scores.tolist(), strict=True):
        run.setdefault(qid, {})[doc_id] = score
    return run


def _overhead(scorer: CEDRScorer, queries: list[str], docs: list[str]) -> dict[str, float]:
    """Pairs per wall second and per CPU second of CEDR and of its backbone's plain forward
    on the same pairs (best of 2 interleaved rounds)."""
    plain = CrossEncoder(
        scorer.model.backbone,
        backend="torch",
        device="cpu",
        max_length=scorer.max_length,
        token_budget=scorer.token_budget,
    )
    best = {f"{name}_{unit}": 0.0 for name in ("cedr", "ce") for unit in ("wall", "cpu")}
    for _ in range(2):
        for name, model in (("cedr", scorer), ("ce", plain)):
            started, cpu_started = time.perf_counter(), time.process_time()
            model.score(queries, docs)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            best[f"{name}_wall"] = max(best[f"{name}_wall"], len(queries) / wall)
            best[f"{name}_cpu"] = max(best[f"{name}_cpu"], len(queries) / cpu)
    return {
        **{f"{key}_pairs_per_s": round(value, 2) for key, value in best.items()},
        "ce_over_cedr_speed_cpu": round(best["ce_cpu"] / best["cedr_cpu"], 3),
    }


def _training_summary(model_dir: Path) -> dict[str, object] | None:
    final = model_dir / "final.json"
    if not final.is_file():
        return None
    summary = json.loads(final.read_text(encoding="utf-8"))
    keys = ("steps", "pairs", "train_seconds", "pairs_per_s", "time_limit_reached")
    return {k: summary[k] for k in keys if k in summary}


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    collection = load_collection(args.data, args.split)
    texts = collection.query_texts()
    if args.queries is not None:
        texts = dict(list(texts.items())[: args.queries])
    qrels = {qid: collection.qrels[qid] for qid in texts}
    bm25 = BM25Retriever.build(collection.corpus).retrieve(texts, args.top_k)
    qids, doc_ids = _pairs(bm25)
    queries = [collection.queries[q].text for q in qids]
    docs = [collection.corpus[d].full_text for d in doc_ids]

    scorer = CEDRScorer.from_pretrained(args.model, token_budget=args.token_budget)
    scorer.score(queries[:WARMUP_PAIRS], docs[:WARMUP_PAIRS])
    started, cpu_started = time.perf_counter(), time.process_time()
    scores = scorer.score(queries, docs)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    model_run = _to_run(qids, doc_ids, scores)

    model = scorer.model
    result = {
        "model": str(args.model),
        "split": args.split,
        "queries": len(bm25),
        "pairs": len(qids),
        "top_k": args.top_k,
        "max_length": scorer.max_length,
        "cedr_config": {
            "layers": model.head.layers,
            "cls": model.config.cls,
            "kernels": len(model.config.kernel_mus),
            "feature_scale": model.config.feature_scale,
        },
        f"bm25_{METRIC}": evaluate(bm25, qrels, [METRIC]).means[METRIC],
        f"model_{METRIC}": evaluate(model_run, qrels, [METRIC]).means[METRIC],
        "parameters": model.num_parameters(),
        "parameters_cedr_head": sum(p.numel() for p in model.head.parameters()),
        "scoring_seconds": round(seconds, 2),
        "scoring_pairs_per_s": round(len(qids) / seconds, 2),
        "scoring_pairs_per_cpu_s": round(len(qids) / cpu_seconds, 2),
        "load_average": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
        "training": _training_summary(args.model),
    }
    if args.overhead_pairs > 0:
        n = args.overhead_pairs
        result["overhead"] = {"pairs": n, **_overhead(scorer, queries[:n], docs[:n])}
    if args.runs_dir is not None:
        write_run(args.runs_dir / "bm25.run", bm25, "bm25")
        write_run(args.runs_dir / "cedr.run", model_run, "cedr")
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        with atomic_write(args.json) as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
