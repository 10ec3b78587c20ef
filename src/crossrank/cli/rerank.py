"""``crossrank rerank``: re-score a first-stage run's top-k with a cross-encoder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from crossrank.cli.common import add_data_args, add_quiet_arg, parse_pair, positive_int
from crossrank.data import load_collection, read_run, write_run
from crossrank.inference import CrossEncoder, PassageConfig
from crossrank.inference.backends import BACKEND_NAMES
from crossrank.inference.passages import AGGREGATES
from crossrank.models.registry import DEFAULT_RERANKER

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_args(parser)
    parser.add_argument("--run", required=True, type=Path, help="first-stage TREC run")
    parser.add_argument(
        "--model",
        default=DEFAULT_RERANKER,
        help=f"cross-encoder: shipped name, HF id or local directory (default: {DEFAULT_RERANKER})",
    )
    parser.add_argument(
        "--top-k", type=positive_int, default=100, help="candidates per query to rescore"
    )
    parser.add_argument("--out", required=True, type=Path, help="TREC run to write")
    parser.add_argument("--backend", choices=BACKEND_NAMES, default="auto",
                        help="auto = fastest exact backend here; onnx-int8 is opt-in")  # fmt: skip
    parser.add_argument(
        "--max-length",
        type=positive_int,
        default=None,
        help="tokens per pair (default: min(512, model limit))",
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)"
    )
    parser.add_argument("--threads", type=positive_int, default=None)
    parser.add_argument("--passages", default=None, metavar="WINDOW,STRIDE",
                        help="score overlapping windows of long documents, e.g. 128,64")  # fmt: skip
    parser.add_argument("--aggregate", choices=AGGREGATES, default="maxp")
    parser.add_argument("--passage-mode", choices=("windows", "bm25"), default="windows",
                        help="bm25: keep only the BM25-best window (query-aware truncation)")  # fmt: skip
    add_quiet_arg(parser)


def run(args: argparse.Namespace) -> int:
    collection = load_collection(args.data, args.split)
    first_stage = read_run(args.run)
    passages = None
    if args.passages is not None:
        window, stride = parse_pair(args.passages, "--passages")
        passages = PassageConfig(
            window=window, stride=stride, aggregate=args.aggregate, mode=args.passage_mode
        )
    model = CrossEncoder.from_pretrained(
        args.model,
        backend=args.backend,
        device=args.device,
        max_length=args.max_length,
        threads=args.threads,
    )
    queries = collection.query_texts()
    judged_run = {qid: docs for qid, docs in first_stage.items() if qid in queries}
    skipped = len(first_stage) - len(judged_run)
    if skipped:
        logger.warning("%d run queries are not in split %r; not reranked", skipped, args.split)
    docs = {doc_id: doc.full_text for doc_id, doc in collection.corpus.items()}
    reranked = model.rerank(
        judged_run, queries, docs, args.top_k, passages=passages, progress=not args.quiet
    )
    write_run(args.out, reranked, tag="crossrank")
    stats = model.last_stats
    if stats is not None:
        logger.info(
            "backend %s: %d pairs (%d truncated) in %.1fs, %.1f pairs/s -> %s",
            model.backend, stats.pairs, stats.truncated_pairs, stats.seconds, stats.pairs_per_s, args.out,
        )  # fmt: skip
    return 0
