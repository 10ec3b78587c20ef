"""Where the engine's wall time goes on a GPU: precision modes, settings variants, timeline.

Same pairs as engine_vs_st.py (the first ``--queries`` SciFact dev queries x BM25 top-100).
First the torch backend in fp32, bf16 (cast module) and bf16 mixed (autocast over fp32
weights): pairs/s, largest score difference from fp32, nDCG@10 and how many scores are
distinct (ties come from a half-precision head). Then, for each variant of the engine
settings (first chunk, chunk size, prefetch depth, token budget, cuDNN attention), the
best-of-``--repeats`` pairs/s of one ``score`` call with ``--backend`` (``--cuda-graphs``:
replaying CUDA graphs). Then, for one variant (``--timeline-variant``, default the defaults),
a timeline of one call: when each thread tokenised (plan), assembled batches, launched forward
passes and waited for the logits, in milliseconds from the start. Last, on CUDA, the
host-device syncs of one default call (torch's sync debug mode). ``--st-baseline`` also times
sentence-transformers' ``CrossEncoder.predict`` (fp32, batch 32) on the same pairs first and
prints each variant's ratio to it; ``--rows`` picks variants by index.

    python benchmarks/engine_timeline.py --device cuda --backend torch-bf16 --model DIR
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossrank.inference import engine as engine_module
from crossrank.inference.backends import Backend, TorchBackend, build_backend, torch_backend
from crossrank.inference.engine import EngineSettings, ScoringEngine
from crossrank.inference.planning import PairPlanner
from crossrank.inference.tokenize import PairTokenizer
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadLayout
from engine_vs_st import (
    DEFAULT_DATA,
    bm25_candidates,
    default_model,
    load_scifact,
    ndcg10,
    st_scorer,
)

EVENTS: list[tuple[str, str, float, float]] = []
# (first_chunk_pairs, chunk_pairs, prefetch, token_budget, cuDNN attention allowed). The first
# is the GPU default of CrossEncoder. Rows recorded in BENCHMARKS.md from earlier H200 calls
# came from this script at commits 3159687 and b0a0544, whose lists differed, and 405f92d,
# whose list is the first ten rows here. The last four vary the chunk size and budget around
# row 6, the fastest with CUDA graphs in that call (10,108 pairs/s).
VARIANTS = (
    (None, 4096, 2, 65536, True),
    (None, 4096, 2, 65536, False),
    (512, 4096, 2, 65536, True),
    (512, 4096, 2, 32768, True),
    (256, 4096, 2, 32768, True),
    (1024, 4096, 2, 32768, True),
    (None, 1024, 2, 32768, True),
    (512, 4096, 4, 32768, True),
    (None, 4096, 2, 32768, True),
    (None, 4096, 0, 65536, True),
    (None, 512, 2, 32768, True),
    (None, 2048, 2, 32768, True),
    (None, 1024, 2, 16384, True),
    (None, 1024, 4, 32768, True),
)


def traced(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, recording (thread, name, start, end) of every call in EVENTS."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            thread = threading.current_thread().name
            EVENTS.append((thread, name, start, time.perf_counter()))

    return wrapper


def install_tracing() -> None:
    PairPlanner.plan = traced("plan", PairPlanner.plan)
    PairTokenizer._encode = traced("encode", PairTokenizer._encode)
    PairTokenizer.assemble = traced("assemble", PairTokenizer.assemble)
    torch_backend.TorchBackend._logits = traced("launch", torch_backend.TorchBackend._logits)
    torch_backend.logits_to_host = traced("to_host", torch_backend.logits_to_host)
    engine_module.validate_pairs = traced("validate", engine_module.validate_pairs)


@dataclass(frozen=True)
class Work:
    """The scored pairs, their (query, doc) ids, the judged queries' qrels and the engine parts."""

    qs: list[str]
    ds: list[str]
    ids: list[tuple[str, str]]
    qrels: dict[str, dict[str, int]]
    model_dir: Path
    tok: PairTokenizer
    heads: HeadLayout
    base: EngineSettings


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--queries", type=int, default=40)
    p.add_argument("--top-k", type=int, default=100, help="BM25 candidates per query")
    p.add_argument("--model", type=Path)
    p.add_argument("--backend", default="torch-bf16")
    p.add_argument("--device", default="cuda")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", type=int, help="run only the first N settings variants")
    p.add_argument("--rows", type=int, nargs="+", help="run only these VARIANTS rows (indices)")
    p.add_argument(
        "--st-baseline",
        action="store_true",
        help="also time sentence-transformers' predict on the same pairs and print x ST per row",
    )
    p.add_argument("--skip-precision", action="store_true", help="no fp32/bf16/mixed table")
    p.add_argument(
        "--timeline-variant",
        type=int,
        default=0,
        help="index of the VARIANTS row whose settings the timeline uses (0: the defaults)",
    )
    p.add_argument(
        "--cuda-graphs", action="store_true", help="the torch backend replays CUDA graphs"
    )
    p.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval (s) for the whole run: how long a thread waiting for the "
        "GIL waits before the holder is asked to drop it (Python's default 0.005)",
    )
    args = p.parse_args()
    bad = [i for i in (args.rows or []) + [args.timeline_variant] if not 0 <= i < len(VARIANTS)]
    if bad:
        p.error(f"no VARIANTS row {bad[0]} (there are {len(VARIANTS)}: 0-{len(VARIANTS) - 1})")
    return args


def main() -> None:
    args = parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    print(f"GIL switch interval {sys.getswitchinterval()} s, RAYON_NUM_THREADS "
          f"{os.environ.get('RAYON_NUM_THREADS', '(unset)')}", flush=True)  # fmt: skip
    corpus, queries, qrels = load_scifact(args.data)
    ids = bm25_candidates(corpus, dict(list(queries.items())[: args.queries]), args.top_k)
    model_dir = args.model or default_model(Path("/tmp/cr-bench"))
    model = CrossEncoderModel.from_pretrained(model_dir)
    work = Work(
        qs=[queries[q] for q, _ in ids],
        ds=[corpus[d] for _, d in ids],
        ids=ids,
        qrels={q: qrels[q] for q in dict.fromkeys(q for q, _ in ids)},  # nDCG over these
        model_dir=model_dir,
        tok=PairTokenizer(model.tokenizer),
        heads=model.heads,
        # The GPU defaults of CrossEncoder (cross_encoder.py, default_token_budget).
        base=EngineSettings(args.max_length, token_budget=65536, pad_multiple=8, chunk_pairs=4096),
    )
    if not args.skip_precision:
        precision_table(args, work)
    backend = build_backend(model, args.backend, args.device, cuda_graphs=args.cuda_graphs)
    st_seconds = st_baseline(args, work) if args.st_baseline else None
    variant_table(args, work, backend, st_seconds)
    timeline(work, backend, VARIANTS[args.timeline_variant])
    if args.device.startswith("cuda"):
        sync_check(work, backend)
    graphed = getattr(backend, "_graphed", None)
    if graphed is not None:
        print(f"CUDA graphs captured: {len(graphed.shapes)}")


def precision_table(args: argparse.Namespace, work: Work) -> None:
    """fp32, bf16 and bf16 mixed: pairs/s, difference from fp32, nDCG@10, distinct scores."""
    reference = None
    for dtype, mixed in (("fp32", False), ("bf16", False), ("bf16", True)):
        model = CrossEncoderModel.from_pretrained(work.model_dir)
        exact = TorchBackend(model, device=args.device, dtype=dtype, mixed=mixed)
        engine = ScoringEngine(work.tok, exact, work.heads, work.base)
        scores = engine.score(work.qs, work.ds).heads["relevance"]  # warm-up, and the scores
        reference = scores if reference is None else reference
        best = min(_timed(engine, work.qs, work.ds) for _ in range(args.repeats))
        print(f"{exact.name:18s} {len(scores) / best:8,.0f} pairs/s  max|diff| vs fp32 "
              f"{np.abs(scores - reference).max():.2e}  "
              f"nDCG@10 {ndcg10(work.ids, scores, work.qrels):.4f}  "
              f"distinct scores {len(np.unique(scores))}/{len(scores)}", flush=True)  # fmt: skip
        if dtype == "fp32":  # what a bf16 head would have left of these scores
            rounded = torch.from_numpy(scores).to(torch.bfloat16).float().numpy()
            print(f"fp32 scores rounded to bf16: {len(np.unique(rounded))}/{len(scores)} distinct")


def st_baseline(args: argparse.Namespace, work: Work) -> float:
    """Best-of-``--repeats`` seconds of sentence-transformers' predict (fp32, batch 32)."""
    predict = st_scorer(work.model_dir, args.device, args.max_length)
    pairs = list(zip(work.qs, work.ds, strict=True))
    predict(pairs[:64])  # warm-up
    best = np.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        predict(pairs)
        best = min(best, time.perf_counter() - start)
    print(f"sentence-transformers fp32: {len(pairs) / best:,.0f} pairs/s ({best * 1e3:.0f} ms)")
    return best


def variant_table(
    args: argparse.Namespace, work: Work, backend: Backend, st_seconds: float | None
) -> None:
    """Best-of-``--repeats`` pairs/s of each settings variant with ``backend``."""
    rows = args.rows if args.rows is not None else range(len(VARIANTS[: args.variants]))
    for first, chunk, depth, budget, cudnn in (VARIANTS[i] for i in rows):
        settings = replace(
            work.base,
            first_chunk_pairs=first,
            chunk_pairs=chunk,
            prefetch=depth,
            token_budget=budget,
        )
        engine = ScoringEngine(work.tok, backend, work.heads, settings)
        if isinstance(backend, TorchBackend):  # read on every forward pass
            if backend.cudnn_attention != cudnn:
                backend._graphed = None  # graphs captured with the other kernels
            backend.cudnn_attention = cudnn
        engine.score(work.qs, work.ds)  # warm-up of this batch shape set
        best = min(_timed(engine, work.qs, work.ds) for _ in range(args.repeats))
        ratio = "" if st_seconds is None else f", {st_seconds / best:.2f}x ST"
        print(f"first {first} chunk {chunk} prefetch {depth} budget {budget} cudnn {cudnn}: "
              f"{len(work.qs) / best:,.0f} pairs/s ({best * 1e3:.0f} ms{ratio})", flush=True)  # fmt: skip


def timeline(work: Work, backend: Backend, variant: tuple[int | None, int, int, int, bool]) -> None:
    """Per-thread spans of one ``score`` call with the settings of one ``VARIANTS`` row."""
    install_tracing()
    first, chunk, depth, budget, cudnn = variant
    settings = replace(
        work.base, first_chunk_pairs=first, chunk_pairs=chunk, prefetch=depth, token_budget=budget
    )
    if isinstance(backend, TorchBackend) and backend.cudnn_attention != cudnn:
        backend._graphed = None
        backend.cudnn_attention = cudnn
    engine = ScoringEngine(work.tok, backend, work.heads, settings)
    engine.score(work.qs, work.ds)
    EVENTS.clear()
    start = time.perf_counter()
    engine.score(work.qs, work.ds)
    total = time.perf_counter() - start
    print(f"timeline of one call ({total * 1e3:.0f} ms), ms from its start:")
    for thread, name, t0, t1 in sorted(EVENTS, key=lambda e: e[2]):
        if name != "launch":
            print(
                f"  {thread[:24]:24s} {name:9s} {(t0 - start) * 1e3:8.1f} {(t1 - start) * 1e3:8.1f}"
            )
    launches = [e for e in EVENTS if e[1] == "launch"]
    if launches:
        busy = sum(t1 - t0 for _, _, t0, t1 in launches)
        print(f"  launch: {len(launches)} batches, {busy * 1e3:.1f} ms in _logits, first at "
              f"{(launches[0][2] - start) * 1e3:.1f}, last ends {(launches[-1][3] - start) * 1e3:.1f}")  # fmt: skip


def sync_check(work: Work, backend: Backend) -> None:
    """Host-device syncs in one default ``score`` call (torch's sync debug mode, warn)."""
    engine = ScoringEngine(work.tok, backend, work.heads, work.base)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            engine.score(work.qs, work.ds)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]
    print(f"host-device syncs in one call: {len(syncs)} "
          f"(the one expected: logits to the host at the end)")  # fmt: skip
    for message, count in collections.Counter(syncs).most_common(5):
        print(f"  {count} x at {message}")


def _timed(engine: ScoringEngine, qs: list[str], ds: list[str]) -> float:
    start = time.perf_counter()
    engine.score(qs, ds)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
