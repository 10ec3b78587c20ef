"""BM25 speed on SciFact: index the corpus, retrieve every query, report time and dev nDCG@10.

Usage (from the repository root):
    python benchmarks/bm25_speed.py [--data ../shared/data/scifact] [--top-k 100] [--threads 0]

Index time covers tokenisation and indexing of the 5,183 documents; retrieve time covers
tokenising and retrieving all 809 queries. Loading the JSON files is reported separately.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pytrec_eval

from crossrank.data import load_corpus, load_queries, read_qrels_tsv
from crossrank.retrieval.bm25 import BM25Config, BM25Retriever

REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "../shared/data/scifact")
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="bm25s n_threads (0: sequential)")
    parser.add_argument("--k1", type=float, default=BM25Config().k1)
    parser.add_argument("--b", type=float, default=BM25Config().b)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    corpus = load_corpus(args.data / "corpus.jsonl")
    queries = {qid: q.text for qid, q in load_queries(args.data / "queries.jsonl").items()}
    qrels = read_qrels_tsv(args.data / "qrels" / "dev.tsv")
    loaded = time.perf_counter()

    retriever = BM25Retriever.build(corpus, BM25Config(k1=args.k1, b=args.b))
    indexed = time.perf_counter()
    run = retriever.retrieve(queries, args.top_k, n_threads=args.threads)
    retrieved = time.perf_counter()

    dev_run = {qid: run[qid] for qid in qrels}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(dev_run)
    ndcg = float(np.mean([m["ndcg_cut_10"] for m in per_query.values()]))

    index_s, retrieve_s = indexed - loaded, retrieved - indexed
    print(f"data: {args.data.resolve()} ({len(corpus)} docs, {len(queries)} queries)")
    print(f"load:     {loaded - started:7.3f} s (JSON parsing, not part of the total)")
    print(f"index:    {index_s:7.3f} s")
    print(f"retrieve: {retrieve_s:7.3f} s (top-{args.top_k}, n_threads={args.threads})")
    print(f"total:    {index_s + retrieve_s:7.3f} s")
    print(f"queries/s: {len(queries) / retrieve_s:,.0f}")
    print(f"nDCG@10 (dev, {len(qrels)} queries): {ndcg:.4f}")


if __name__ == "__main__":
    main()
