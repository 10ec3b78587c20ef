"""How fast the host can feed a GPU: tokenising (with spans) and assembling batches, no model.

Same pairs as engine_vs_st.py (the first ``--queries`` SciFact dev queries x BM25 top-100),
the MiniLM tokenizer, best of ``--repeats``. Pin it to one core to get a per-core figure:

    taskset -c 0 env RAYON_NUM_THREADS=1 python benchmarks/host_feed.py --queries 5

With ``--backend`` (e.g. ``torch-bf16 --device cuda --model DIR``) it also times the model
alone on the same batches, assembled beforehand: the rate the backend reaches when the host
costs nothing, to set beside the host's rate and the engine's end-to-end figure.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from transformers import AutoTokenizer

from crossrank.inference.backends import build_backend
from crossrank.inference.batching import plan_batches
from crossrank.inference.planning import PairPlanner, PlannedChunk
from crossrank.inference.tokenize import PairTokenizer, TokenBatch
from crossrank.models.cross_encoder import CrossEncoderModel
from engine_vs_st import DEFAULT_DATA, bm25_candidates, default_model, load_scifact

SETTINGS = ((256, 2048, 1), (512, 2048, 1), (256, 65536, 8), (512, 65536, 8))  # CPU, GPU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", type=Path, help="checkpoint (default: MiniLM + fresh head)")
    parser.add_argument("--backend", help="also time this backend alone, e.g. torch-bf16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--no-ascii-fast-path",
        action="store_true",
        help="tokenise ASCII texts with the full normalizer too (accent stripping included)",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    corpus, queries, _ = load_scifact(args.data)
    ids = bm25_candidates(corpus, dict(list(queries.items())[: args.queries]), 100)
    qs, ds = [queries[q] for q, _ in ids], [corpus[d] for _, d in ids]
    model_dir = args.model or default_model(Path.home() / ".cache" / "crossrank")
    tok = PairTokenizer(
        AutoTokenizer.from_pretrained(model_dir), ascii_fast_path=not args.no_ascii_fast_path
    )
    backend = None
    if args.backend:
        model = CrossEncoderModel.from_pretrained(model_dir)
        backend = build_backend(model, args.backend, args.device)
    for max_length, budget, pad in SETTINGS:
        plan_s, assemble_s, model_s = float("inf"), float("inf"), float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            chunk = PairPlanner(tok, max_length).plan(qs, ds, None)
            t1 = time.perf_counter()
            batches = assemble_all(tok, chunk, budget, pad)
            t2 = time.perf_counter()
            if backend is not None:
                backend.forward_stream(batches)  # ends with the logits on the host
                model_s = min(model_s, time.perf_counter() - t2)
            plan_s, assemble_s = min(plan_s, t1 - t0), min(assemble_s, t2 - t1)
        n = len(qs)
        line = (f"max_length {max_length} budget {budget} pad {pad}: tokenise+spans "
                f"{n / plan_s:,.0f} pairs/s, assemble {n / assemble_s:,.0f} pairs/s, "
                f"both {n / (plan_s + assemble_s):,.0f} pairs/s")  # fmt: skip
        if backend is not None:
            line += f", {args.backend} alone {n / model_s:,.0f} pairs/s"
        print(line, flush=True)


def assemble_all(
    tok: PairTokenizer, chunk: PlannedChunk, budget: int, pad: int
) -> list[TokenBatch]:
    """Every batch of ``chunk`` as the engine would assemble it."""
    spans, out = chunk.spans, []
    for rows in plan_batches(chunk.row_lengths(), budget, pad_multiple=pad):
        owner = spans.owner[rows]
        out.append(tok.assemble(chunk.queries.tokens, chunk.docs.tokens, query_index=chunk.q_of[owner],
                                doc_index=chunk.d_of[owner], doc_start=spans.start[rows],
                                doc_end=spans.end[rows], pad_multiple=pad))  # fmt: skip
    return out


if __name__ == "__main__":
    main()
