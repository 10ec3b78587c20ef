"""crossrank's engine vs sentence-transformers' CrossEncoder on the same SciFact pairs.

Pairs: SciFact dev queries x their BM25 top-k (bm25s, k1=0.9, b=0.4, English stopwords,
PyStemmer 'english', over title + " " + text). Both scorers run in one process with the
same model, max length and threads; each is warmed up first. sentence-transformers uses its
default batch size (32), crossrank its defaults (token-budget bucketing). Printed per max
length: pairs/s of each, ratio to sentence-transformers, max |score difference| to it, and
nDCG@10 of the reranked run (meaningful only with a trained model: pass --model).

Without --model the offline all-MiniLM-L6-v2 backbone with a fresh seeded 1-logit head is
used (built once under the cache directory).

CPU:  python benchmarks/engine_vs_st.py --queries 20 --max-length 256 512
GPU:  python benchmarks/engine_vs_st.py --device cuda --backends torch torch-bf16 torch-fp16
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import ir_measures
import numpy as np
import Stemmer
import torch
from ir_measures import nDCG
from sentence_transformers import CrossEncoder as STCrossEncoder

from crossrank import CrossEncoder
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadSpec
from crossrank.retrieval.encoder import resolve_model_path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "scifact"
Pairs = list[tuple[str, str]]
Scorer = Callable[[Pairs], np.ndarray]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--model", type=Path, help="cross-encoder directory (default: MiniLM + seeded head)"
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR SciFact directory")
    p.add_argument("--queries", type=int, default=20, help="first N dev queries (0 = all)")
    p.add_argument("--top-k", type=int, default=100, help="BM25 candidates per query")
    p.add_argument("--max-length", type=int, nargs="+", default=[256, 512])
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--backends",
        nargs="+",
        default=None,
        help="crossrank backends (default: auto + all for the device)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--cuda-graphs", action="store_true", help="also each torch GPU backend with CUDA graphs"
    )
    p.add_argument("--st-batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=1, help="timed rounds per scorer (best is kept)")
    p.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "crossrank")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def load_scifact(root: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """Corpus texts (title + text), dev query texts, dev qrels."""
    if not (root / "corpus.jsonl").is_file():
        raise SystemExit(f"SciFact not found at {root} (pass --data)")
    with (root / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = {d["_id"]: f"{d['title']} {d['text']}".strip() for d in map(json.loads, f)}
    with (root / "queries.jsonl").open(encoding="utf-8") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f)}
    qrels: dict[str, dict[str, int]] = {}
    with (root / "qrels" / "dev.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return corpus, {q: t for q, t in queries.items() if q in qrels}, qrels


def bm25_candidates(
    corpus: dict[str, str], queries: dict[str, str], top_k: int
) -> list[tuple[str, str]]:
    """(query id, doc id) of each query's BM25 top_k, in rank order."""
    ids = list(corpus)
    stemmer = Stemmer.Stemmer("english")
    index = bm25s.BM25(k1=0.9, b=0.4)
    index.index(
        bm25s.tokenize(list(corpus.values()), stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    q_tokens = bm25s.tokenize(
        list(queries.values()), stopwords="en", stemmer=stemmer, show_progress=False
    )
    hits, _ = index.retrieve(q_tokens, k=top_k, show_progress=False)
    return [(qid, ids[j]) for qid, row in zip(queries, hits, strict=True) for j in row]


def default_model(cache: Path) -> Path:
    """MiniLM-L6 backbone with a fresh 1-logit head (seed 0), saved once in HF layout."""
    path = cache / "bench-models" / "all-MiniLM-L6-v2-binary-seed0"
    if not (path / "config.json").is_file():
        model = CrossEncoderModel.from_pretrained(
            resolve_model_path("all-MiniLM-L6-v2"), heads=[HeadSpec.binary()], seed=0
        )
        model.save_pretrained(path)
    return path


def ndcg10(
    ids: list[tuple[str, str]], scores: np.ndarray, qrels: dict[str, dict[str, int]]
) -> float:
    run: dict[str, dict[str, float]] = {}
    for (qid, did), score in zip(ids, scores.tolist(), strict=True):
        run.setdefault(qid, {})[did] = score
    return float(ir_measures.calc_aggregate([nDCG @ 10], qrels, run)[nDCG @ 10])


@dataclass(frozen=True)
class Workload:
    model: Path
    pairs: Pairs
    ids: list[tuple[str, str]]
    qrels: dict[str, dict[str, int]]


def build_scorers(args: argparse.Namespace, work: Workload, max_length: int) -> dict[str, Scorer]:
    """sentence-transformers first (the reference), then each crossrank backend; all warmed up."""
    scorers: dict[str, Scorer] = {
        "sentence-transformers": st_scorer(work.model, args.device, max_length, args.st_batch_size)
    }
    default = (
        ["auto", "onnx", "onnx-int8", "torch"]
        if args.device == "cpu"
        else ["auto", "torch", "torch-bf16", "torch-fp16"]
    )
    for backend in args.backends or default:
        ce = load_crossrank(args, work, backend, max_length, graphs=False)
        name = f"crossrank {backend}" + (f" (= {ce.backend})" if backend == "auto" else "")
        scorers[name] = ce.predict
        if args.cuda_graphs and ce.backend.startswith("torch") and args.device != "cpu":
            graphed = load_crossrank(args, work, backend, max_length, graphs=True)
            scorers[f"{name} + CUDA graphs"] = graphed.predict
    for scorer in scorers.values():
        scorer(work.pairs[:64])  # warm-up (and the ONNX export on first use)
    return scorers


def st_scorer(model: Path, device: str, max_length: int, batch_size: int = 32) -> Scorer:
    """sentence-transformers' ``CrossEncoder.predict`` with raw logits (no sigmoid)."""
    st = STCrossEncoder(
        str(model), device=device, max_length=max_length, activation_fn=torch.nn.Identity()
    )
    return lambda pairs: st.predict(pairs, batch_size=batch_size, show_progress_bar=False)


def load_crossrank(
    args: argparse.Namespace, work: Workload, backend: str, max_length: int, *, graphs: bool
) -> CrossEncoder:
    return CrossEncoder.from_pretrained(
        work.model,
        backend=backend,
        device=args.device,
        max_length=max_length,
        threads=args.threads,
        cache_dir=args.cache_dir / "onnx",
        cuda_graphs=graphs,
    )


def bench_length(args: argparse.Namespace, work: Workload, max_length: int) -> list[dict]:
    """Best-of-``repeats`` timings of every scorer, interleaved so load spikes hit all alike.

    Besides wall-clock pairs/s, pairs per CPU-second (all threads) is recorded: on a machine
    shared with other jobs it moves far less than wall-clock time.
    """
    scorers = build_scorers(args, work, max_length)
    wall = dict.fromkeys(scorers, float("inf"))
    cpu = dict.fromkeys(scorers, float("inf"))
    scores: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, scorer in scorers.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            scores[name] = scorer(work.pairs)
            wall[name] = min(wall[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    ref = "sentence-transformers"
    n = len(work.pairs)
    return [
        {
            "max_length": max_length,
            "scorer": name,
            "pairs_per_s": n / wall[name],
            "ratio": wall[ref] / wall[name],
            "pairs_per_cpu_s": n / cpu[name],
            "cpu_ratio": cpu[ref] / cpu[name],
            "max_abs_diff": float(np.abs(scores[name] - scores[ref]).max()),
            "top10_overlap": top10_overlap(work.ids, scores[name], scores[ref]),
            "ndcg@10": ndcg10(work.ids, scores[name], work.qrels),
        }
        for name in scorers
    ]


def top10_overlap(ids: list[tuple[str, str]], scores: np.ndarray, ref: np.ndarray) -> float:
    """Mean share of each query's top 10 that agrees with the reference scorer's top 10."""
    overlaps = []
    qids = np.array([q for q, _ in ids])
    for qid in dict.fromkeys(qids.tolist()):
        rows = np.flatnonzero(qids == qid)
        ours = set(rows[np.argsort(-scores[rows], kind="stable")[:10]])
        theirs = set(rows[np.argsort(-ref[rows], kind="stable")[:10]])
        overlaps.append(len(ours & theirs) / max(len(theirs), 1))
    return float(np.mean(overlaps))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    model = args.model or default_model(args.cache_dir)
    corpus, queries, qrels = load_scifact(args.data)
    if args.queries:
        queries = dict(list(queries.items())[: args.queries])
        qrels = {q: qrels[q] for q in queries}
    ids = bm25_candidates(corpus, queries, args.top_k)
    pairs = [(queries[q], corpus[d]) for q, d in ids]
    print(
        f"model {model}\n{len(queries)} queries x BM25 top-{args.top_k} = {len(pairs)} pairs, device {args.device}, threads {args.threads}"
    )
    results = []
    for max_length in args.max_length:
        results.extend(bench_length(args, Workload(model, pairs, ids, qrels), max_length))
        print(f"\nmax_length {max_length}")
        print(
            f"{'scorer':34s} {'pairs/s':>8s} {'x ST':>6s} {'pairs/cpu-s':>11s} {'x ST':>6s} "
            f"{'max|diff|':>10s} {'top10=ST':>8s} {'nDCG@10':>8s}"
        )
        for r in (r for r in results if r["max_length"] == max_length):
            print(
                f"{r['scorer']:34s} {r['pairs_per_s']:8.2f} {r['ratio']:6.2f} "
                f"{r['pairs_per_cpu_s']:11.2f} {r['cpu_ratio']:6.2f} {r['max_abs_diff']:10.2e} "
                f"{r['top10_overlap']:8.3f} {r['ndcg@10']:8.4f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
