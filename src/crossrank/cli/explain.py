"""``crossrank explain``: why a cross-encoder scored a document as it did, as HTML pages.

Two modes:

* one pair: ``--query Q --doc D --out F.html [--json F.json]``;
* a run: ``--data DIR --split S --run RUN --top-n N [--max-queries K] --out DIR`` explains
  each query's top-N run documents into ``DIR/index.html`` plus one page (and JSON) a pair.

Example:
    $ crossrank explain --model out/reranker --query "what is bm25" \
        --doc "BM25 is a ranking function. Cats purr." --out why.html
    $ crossrank explain --model out/reranker --data examples/tiny --split test \
        --run bm25.run --top-n 3 --out explain-bm25/
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from crossrank.cli.common import add_quiet_arg, positive_int
from crossrank.data import load_collection, read_run
from crossrank.errors import ConfigError
from crossrank.evaluation.explain import (
    IGConfig,
    RunSelection,
    explain_pair,
    explain_run,
    write_explanation_json,
    write_pair_html,
    write_run_report,
)
from crossrank.evaluation.explain.gradients import BASELINES, RULES
from crossrank.inference import CrossEncoder
from crossrank.models.registry import DEFAULT_RERANKER

logger = logging.getLogger(__name__)
_PAIR_ARGS = ("query", "doc", "json")
_RUN_ARGS = ("data", "split", "run", "top_n", "max_queries")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=DEFAULT_RERANKER,
        help=f"cross-encoder: shipped name, directory or HF id (default: {DEFAULT_RERANKER})",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="pair mode: HTML file; run mode: directory"
    )
    pair = parser.add_argument_group("one pair")
    pair.add_argument("--query", help="query text")
    pair.add_argument("--doc", help="document text")
    pair.add_argument("--json", type=Path, help="also write the explanation as JSON")
    run = parser.add_argument_group("a run (each query's top-N documents)")
    run.add_argument("--data", type=Path, help="BEIR collection directory")
    run.add_argument("--split", help="qrels split whose queries to explain, e.g. dev")
    run.add_argument("--run", type=Path, help="TREC run whose top documents to explain")
    run.add_argument("--top-n", type=positive_int, help="documents per query (default 3)")
    run.add_argument("--max-queries", type=positive_int, help="explain at most this many queries")
    ig = parser.add_argument_group("integrated gradients")
    ig.add_argument("--steps", type=positive_int, default=50, help="integration steps (default 50)")
    ig.add_argument(
        "--batch-size", type=positive_int, default=16, help="path points per pass (default 16)"
    )
    ig.add_argument("--baseline", choices=BASELINES, default="pad",
                    help="embedding that replaces query/document tokens at the path start")  # fmt: skip
    ig.add_argument("--rule", choices=RULES, default="trapezoid", help="quadrature rule")
    parser.add_argument(
        "--max-length",
        type=positive_int,
        default=None,
        help="tokens per pair (default: min(512, model limit))",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if any)")
    add_quiet_arg(parser)


def run(args: argparse.Namespace) -> int:
    run_mode = _check_mode(args)
    config = IGConfig(
        steps=args.steps, batch_size=args.batch_size, baseline=args.baseline, rule=args.rule
    )
    # Explanations need the exact fp32 torch weights, whatever backend serving uses.
    encoder = CrossEncoder.from_pretrained(
        args.model, backend="torch", device=args.device, max_length=args.max_length
    )
    if run_mode:
        return _explain_run(args, encoder, config)
    explanation = explain_pair(encoder, args.query, args.doc, config)
    if args.json is not None:
        write_explanation_json(args.json, explanation)
    write_pair_html(args.out, explanation)
    _log_pair(explanation.attributions.relative_error, explanation.score, args.out)
    return 0


def _check_mode(args: argparse.Namespace) -> bool:
    """True for run mode; ConfigError naming the flags that mix or miss a mode."""
    pair_given = [a for a in _PAIR_ARGS if getattr(args, a) is not None]
    run_given = [a for a in _RUN_ARGS if getattr(args, a) is not None]
    if pair_given and run_given:
        raise ConfigError(
            f"give either a pair (--query/--doc) or a run (--data/--split/--run), not both: "
            f"got {_flags(pair_given + run_given)}"
        )
    needed = ("data", "split", "run") if run_given else ("query", "doc")
    missing = [a for a in needed if getattr(args, a) is None]
    if missing:
        raise ConfigError(f"missing {_flags(missing)} (see crossrank explain --help)")
    return bool(run_given)


def _flags(names: list[str]) -> str:
    return ", ".join("--" + n.replace("_", "-") for n in names)


def _explain_run(args: argparse.Namespace, encoder: CrossEncoder, config: IGConfig) -> int:
    collection = load_collection(args.data, args.split)
    first_stage = read_run(args.run)
    queries = collection.query_texts()
    judged = {qid: docs for qid, docs in first_stage.items() if qid in queries}
    skipped = len(first_stage) - len(judged)
    if skipped:
        logger.warning("%d run queries are not in split %r; not explained", skipped, args.split)
    docs = {doc_id: doc.full_text for doc_id, doc in collection.corpus.items()}
    selection = RunSelection(top_n=args.top_n or 3, max_queries=args.max_queries, ig=config)
    explanations = explain_run(encoder, judged, queries, docs, selection, progress=not args.quiet)
    write_run_report(args.out, explanations)
    worst = max(e.attributions.relative_error for e in explanations)
    logger.info(
        "explained %d pairs -> %s/index.html (worst IG completeness error %.2f%%)",
        len(explanations), args.out, 100 * worst,
    )  # fmt: skip
    return 0


def _log_pair(relative_error: float, score: float, out: Path) -> None:
    logger.info("score %.6g, IG completeness error %.2f%% -> %s", score, 100 * relative_error, out)
    if relative_error > 0.01:
        logger.warning("IG completeness error above 1%%: raise --steps for exact attributions")
