"""``crossrank retrieve``: first-stage retrieval (BM25, dense or hybrid) into a TREC run."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from crossrank.cli.common import add_data_args, add_quiet_arg, positive_int
from crossrank.data import Collection, load_collection, write_run
from crossrank.protocols import Retriever
from crossrank.retrieval.bm25 import BM25Config, BM25Retriever
from crossrank.retrieval.dense import DenseRetriever, default_cache_dir
from crossrank.retrieval.encoder import DenseConfig, DenseEncoder
from crossrank.retrieval.fusion import HybridRetriever

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_args(parser)
    parser.add_argument("--retriever", choices=("bm25", "dense", "hybrid"), default="bm25")
    parser.add_argument("--top-k", type=positive_int, default=100)
    parser.add_argument("--out", required=True, type=Path, help="TREC run file to write")
    bm25 = parser.add_argument_group("BM25")
    bm25.add_argument("--k1", type=float, default=BM25Config().k1)
    bm25.add_argument("--b", type=float, default=BM25Config().b)
    bm25.add_argument(
        "--index", type=Path, help="load the BM25 index from here, or build and save it"
    )
    dense = parser.add_argument_group("dense")
    dense.add_argument(
        "--model",
        default="default",
        help="bi-encoder: HF id or directory (default: offline all-MiniLM-L6-v2)",
    )
    dense.add_argument("--max-length", type=positive_int, default=DenseConfig().max_length)
    dense.add_argument(
        "--cache-dir", type=Path, help="embedding cache (default: ~/.cache/crossrank/dense/...)"
    )
    hybrid = parser.add_argument_group("hybrid")
    hybrid.add_argument("--fusion", choices=("rrf", "interpolate"), default="rrf")
    hybrid.add_argument("--weights", type=float, nargs=2, metavar=("BM25", "DENSE"))
    hybrid.add_argument(
        "--depth",
        type=positive_int,
        default=None,
        help="candidates per retriever before fusion (default: max(top-k, 100))",
    )
    add_quiet_arg(parser)


def run(args: argparse.Namespace) -> int:
    collection = load_collection(args.data, args.split)
    started = time.perf_counter()
    retriever = _build(args, collection)
    indexed = time.perf_counter()
    run = retriever.retrieve(collection.query_texts(), args.top_k)
    done = time.perf_counter()
    write_run(args.out, run, tag=args.retriever)
    logger.info(
        "%s: %d docs indexed in %.2fs, %d queries retrieved in %.2fs -> %s",
        args.retriever,
        len(collection.corpus),
        indexed - started,
        len(run),
        done - indexed,
        args.out,
    )
    return 0


def _build(args: argparse.Namespace, collection: Collection) -> Retriever:
    if args.retriever == "bm25":
        return _bm25(args, collection)
    if args.retriever == "dense":
        return _dense(args, collection)
    depth = args.depth or max(args.top_k, 100)
    return HybridRetriever(
        [_bm25(args, collection), _dense(args, collection)],
        method=args.fusion,
        weights=args.weights,
        depth=depth,
    )


def _bm25(args: argparse.Namespace, collection: Collection) -> BM25Retriever:
    config = BM25Config(k1=args.k1, b=args.b)
    if args.index is not None and (args.index / "crossrank_bm25.json").is_file():
        retriever = BM25Retriever.load(args.index)
        if retriever.config == config and retriever.doc_ids == list(collection.corpus):
            return retriever
        logger.info("BM25 index in %s does not match this corpus/config; rebuilding", args.index)
    retriever = BM25Retriever.build(collection.corpus, config)
    if args.index is not None:
        retriever.save(args.index)
    return retriever


def _dense(args: argparse.Namespace, collection: Collection) -> DenseRetriever:
    encoder = DenseEncoder(DenseConfig(model=args.model, max_length=args.max_length))
    cache_dir = args.cache_dir or default_cache_dir(args.data, args.model)
    return DenseRetriever.build(
        collection.corpus, encoder, cache_dir=cache_dir, show_progress=not args.quiet
    )
