"""How fast the host can feed a GPU: tokenising (with spans) and assembling batches, no model.

Same pairs as engine_vs_st.py (the first ``--queries`` SciFact dev queries x BM25 top-100),
the MiniLM tokenizer, best of ``--repeats``. Pin it to one core to get a per-core figure:

    taskset -c 0 env RAYON_NUM_THREADS=1 python benchmarks/host_feed.py --queries 5
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from transformers import AutoTokenizer

from crossrank.inference.batching import plan_batches
from crossrank.inference.planning import PairPlanner
from crossrank.inference.tokenize import PairTokenizer
from engine_vs_st import DEFAULT_DATA, bm25_candidates, default_model, load_scifact

SETTINGS = ((256, 2048, 1), (512, 2048, 1), (256, 65536, 8), (512, 65536, 8))  # CPU, GPU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    corpus, queries, _ = load_scifact(args.data)
    ids = bm25_candidates(corpus, dict(list(queries.items())[: args.queries]), 100)
    qs, ds = [queries[q] for q, _ in ids], [corpus[d] for _, d in ids]
    tok = PairTokenizer(
        AutoTokenizer.from_pretrained(default_model(Path.home() / ".cache" / "crossrank"))
    )
    for max_length, budget, pad in SETTINGS:
        plan_s, assemble_s = float("inf"), float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            chunk = PairPlanner(tok, max_length).plan(qs, ds, None)
            t1 = time.perf_counter()
            spans = chunk.spans
            for rows in plan_batches(chunk.row_lengths(), budget, pad_multiple=pad):
                owner = spans.owner[rows]
                tok.assemble(chunk.queries.tokens, chunk.docs.tokens, query_index=chunk.q_of[owner],
                             doc_index=chunk.d_of[owner], doc_start=spans.start[rows],
                             doc_end=spans.end[rows], pad_multiple=pad)  # fmt: skip
            plan_s, assemble_s = min(plan_s, t1 - t0), min(assemble_s, time.perf_counter() - t1)
        n = len(qs)
        print(f"max_length {max_length} budget {budget} pad {pad}: tokenise+spans "
              f"{n / plan_s:,.0f} pairs/s, assemble {n / assemble_s:,.0f} pairs/s, "
              f"both {n / (plan_s + assemble_s):,.0f} pairs/s")  # fmt: skip


if __name__ == "__main__":
    main()
