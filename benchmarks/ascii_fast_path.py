"""Tokenising with and without PairTokenizer's ASCII fast path (no accent stripping on ASCII).

Encodes the unique documents of the first ``--queries`` SciFact dev queries' BM25 top-100 (the
engine_vs_st.py pairs) with the MiniLM tokenizer, both ways interleaved, best of ``--repeats``,
and checks that the ids agree. Best wall time and best process CPU time (all threads) of each.
Pin it to one core for a per-core figure:

    taskset -c 0 env RAYON_NUM_THREADS=1 python benchmarks/ascii_fast_path.py --queries 40
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).parent))
from crossrank.inference.tokenize import PairTokenizer
from crossrank.retrieval.encoder import resolve_model_path
from engine_vs_st import DEFAULT_DATA, bm25_candidates, load_scifact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    args = parser.parse_args()
    corpus, queries, _ = load_scifact(args.data)
    ids = bm25_candidates(corpus, dict(list(queries.items())[: args.queries]), 100)
    docs = list(dict.fromkeys(corpus[d] for _, d in ids))
    hf = AutoTokenizer.from_pretrained(resolve_model_path(args.model))
    fast, full = PairTokenizer(hf), PairTokenizer(hf, ascii_fast_path=False)
    best = {"full normalizer": float("inf"), "ASCII fast path": float("inf")}
    cpu = dict(best)
    out = {}
    for _ in range(args.repeats):
        for name, tok in (("full normalizer", full), ("ASCII fast path", fast)):
            start, start_cpu = time.perf_counter(), time.process_time()
            out[name] = tok.encode(docs).tokens
            best[name] = min(best[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    same = (out["full normalizer"].ids == out["ASCII fast path"].ids).all()
    share = sum(d.isascii() for d in docs) / len(docs)
    print(f"{len(docs)} unique documents, {share:.1%} ASCII; ids identical: {bool(same)}")
    for name, seconds in best.items():
        print(f"{name:16s} {seconds * 1e3:8.1f} ms wall, {cpu[name] * 1e3:8.1f} ms CPU "
              f"(all threads)  {len(docs) / seconds:8,.0f} docs/s")  # fmt: skip
    print(f"speed-up {best['full normalizer'] / best['ASCII fast path']:.2f}x wall, "
          f"{cpu['full normalizer'] / cpu['ASCII fast path']:.2f}x CPU")  # fmt: skip


if __name__ == "__main__":
    main()
