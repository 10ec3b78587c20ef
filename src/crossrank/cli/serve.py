"""``crossrank serve``: an HTTP reranking server (Cohere v2 and TEI shapes) for one model.

Example:
    $ crossrank serve --model path/to/model --port 8080 --max-length 256
    $ curl -s localhost:8080/v1/rerank -H 'Content-Type: application/json' \\
        -d '{"query": "what is bm25", "documents": ["BM25 is ...", "Cats ..."], "top_n": 1}'
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from crossrank.cli.common import add_quiet_arg, parse_pair, positive_int
from crossrank.inference.backends import BACKEND_NAMES
from crossrank.inference.cross_encoder import CrossEncoder
from crossrank.inference.passages import AGGREGATES, PASSAGE_MODES, PassageConfig
from crossrank.models.registry import DEFAULT_RERANKER
from crossrank.serving.app import create_app
from crossrank.serving.config import DEFAULT_PORT, ServerConfig, read_api_key
from crossrank.serving.model import ServedModel
from crossrank.serving.server import listen, run_server

logger = logging.getLogger(__name__)
_DEFAULTS = ServerConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=DEFAULT_RERANKER,
        help=f"cross-encoder: shipped name, directory or HF id (default: {DEFAULT_RERANKER})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    _add_engine_args(parser)
    _add_limit_args(parser)
    parser.add_argument("--access-log", action="store_true", help="log every request")
    add_quiet_arg(parser)


def _add_engine_args(parser: argparse.ArgumentParser) -> None:
    engine = parser.add_argument_group("engine")
    engine.add_argument("--backend", choices=BACKEND_NAMES, default="auto")
    engine.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    engine.add_argument("--max-length", type=positive_int, help="default: min(512, model)")
    engine.add_argument("--threads", type=positive_int, help="inference threads")
    engine.add_argument("--token-budget", type=positive_int, help="padded tokens per forward pass")
    engine.add_argument("--cache-dir", type=Path, help="exported ONNX graphs")
    passages = parser.add_argument_group("long documents (default: truncate)")
    passages.add_argument(
        "--passages", metavar="WINDOW,STRIDE", help="score token windows of long documents"
    )
    passages.add_argument("--passage-aggregate", choices=AGGREGATES, default="maxp")
    passages.add_argument("--passage-mode", choices=PASSAGE_MODES, default="windows")
    passages.add_argument("--max-windows", type=positive_int)


def _add_limit_args(parser: argparse.ArgumentParser) -> None:
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-batch-tokens",
        type=positive_int,
        default=_DEFAULTS.max_batch_tokens,
        help="model-input tokens per merged model call (a larger request runs alone)",
    )
    limits.add_argument(
        "--max-request-tokens",
        type=positive_int,
        default=_DEFAULTS.max_request_tokens,
        help="model-input tokens per request (413 beyond)",
    )
    limits.add_argument(
        "--max-client-docs",
        type=positive_int,
        default=_DEFAULTS.max_client_docs,
        help="documents per request (413 beyond)",
    )
    limits.add_argument(
        "--max-queue",
        type=positive_int,
        default=_DEFAULTS.max_queue,
        help="queued requests (429 with Retry-After beyond)",
    )
    limits.add_argument("--max-body-bytes", type=positive_int, default=_DEFAULTS.max_body_bytes)
    limits.add_argument(
        "--request-timeout",
        type=float,
        default=_DEFAULTS.request_timeout_s,
        help="seconds (504 beyond)",
    )
    limits.add_argument(
        "--max-wait-ms",
        type=float,
        default=_DEFAULTS.max_wait_s * 1000,
        help="linger for more requests when a batch is not full",
    )
    limits.add_argument("--api-key-file", type=Path, help="require 'Authorization: Bearer KEY'")
    limits.add_argument(
        "--graceful-timeout",
        type=float,
        default=_DEFAULTS.graceful_timeout_s,
        help="seconds shutdown waits for in-flight requests",
    )


def run(args: argparse.Namespace) -> int:
    config = ServerConfig(
        max_batch_tokens=args.max_batch_tokens,
        max_request_tokens=args.max_request_tokens,
        max_client_docs=args.max_client_docs,
        max_queue=args.max_queue,
        max_body_bytes=args.max_body_bytes,
        request_timeout_s=args.request_timeout,
        max_wait_s=args.max_wait_ms / 1000,
        api_key=read_api_key(args.api_key_file) if args.api_key_file else None,
        passages=_passages(args),
        graceful_timeout_s=args.graceful_timeout,
    )
    sock = listen(args.host, args.port)  # before the slow model load: a busy port fails fast
    try:
        encoder = CrossEncoder.from_pretrained(
            args.model,
            backend=args.backend,
            device=args.device,
            max_length=args.max_length,
            threads=args.threads,
            token_budget=args.token_budget,
            cache_dir=args.cache_dir,
        )
        run_server(
            create_app(ServedModel.load(args.model, encoder), config),
            sock,
            graceful_timeout_s=config.graceful_timeout_s,
            access_log=args.access_log,
            log_level="warning" if args.quiet else "info",
        )
    finally:
        sock.close()
    logger.info("crossrank serve: stopped")
    return 0


def _passages(args: argparse.Namespace) -> PassageConfig | None:
    if args.passages is None:
        return None
    window, stride = parse_pair(args.passages, "--passages")
    return PassageConfig(
        window=window,
        stride=stride,
        aggregate=args.passage_aggregate,
        mode=args.passage_mode,
        max_windows=args.max_windows,
    )
