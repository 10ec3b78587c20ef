"""``crossrank report``: one split's accuracy, calibration, robustness, efficiency and cross- vs
dual-encoder report, written as report.md, report.html, report.json and PNGs into ``--out``.

Each re-ranker configuration (max length x backend) scores the first stage's candidates
once; every depth is derived from those scores. Latency is timed on ``--queries`` sampled
queries. Calibrators are fitted on ``--fit-split`` (default ``train``), never on ``--split``.

Example:
    $ crossrank report --data examples/tiny --split test --systems bm25 dense hybrid rerank \\
        --model PATH --depths 2 5 --top-k 5 --max-lengths 128 --fit-split none --out reports/tiny
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path

from crossrank.cli.common import add_data_args, add_quiet_arg, positive_int
from crossrank.evaluation.efficiency import (
    DEFAULT_CPU_WATTS_PER_CORE,
    DEFAULT_GPU_WATTS,
    PowerModel,
)
from crossrank.evaluation.perturbations import PERTURBATIONS
from crossrank.evaluation.report import (
    DEFAULT_PERTURBATIONS,
    ReportConfig,
    StatsSettings,
    build_report,
    check_output_dir,
    command_line,
    parse_system,
    parse_systems,
    write_report,
)
from crossrank.evaluation.significance import TESTS
from crossrank.inference.backends import BACKEND_NAMES
from crossrank.models.registry import DEFAULT_RERANKER
from crossrank.retrieval.dense import default_cache_dir

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_args(parser)
    parser.add_argument("--systems", nargs="+", default=["bm25", "dense", "hybrid", "rerank"],
                        help="bm25 dense hybrid rerank run:PATH (a TREC run)")  # fmt: skip
    parser.add_argument(
        "--model",
        default=DEFAULT_RERANKER,
        help=f"cross-encoder: shipped name, directory or HF id (default: {DEFAULT_RERANKER})",
    )
    parser.add_argument("--first-stage", default="bm25", help="what 'rerank' re-ranks")
    parser.add_argument("--baseline", default="bm25", help="system every p-value compares to")
    parser.add_argument("--top-k", type=positive_int, default=100, help="candidates per query")
    parser.add_argument("--depths", nargs="+", type=positive_int, default=[10, 20, 50, 100],
                        help="re-ranking depths (<= top-k; top-k is always added)")  # fmt: skip
    parser.add_argument("--max-lengths", nargs="+", type=positive_int, default=[512])
    parser.add_argument("--backends", nargs="+", choices=BACKEND_NAMES, default=["auto"])
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if any)")
    parser.add_argument("--threads", type=positive_int, default=None)
    parser.add_argument("--queries", type=positive_int, default=20,
                        help="queries sampled for latency (accuracy uses all)")  # fmt: skip
    parser.add_argument("--out", required=True, type=Path, help="report folder to write")
    _add_stats_args(parser)
    _add_section_args(parser)
    add_quiet_arg(parser)


def _add_stats_args(parser: argparse.ArgumentParser) -> None:
    stats = parser.add_argument_group("statistics")
    stats.add_argument("--metrics", nargs="+", default=["nDCG@10", "RR@10", "AP@100", "R@100"],
                       help="the first one drives efficiency and the cross/dual section")  # fmt: skip
    stats.add_argument("--test", choices=TESTS, default="t", help="paired significance test")
    stats.add_argument("--samples", type=positive_int, default=10_000, help="bootstrap samples")
    stats.add_argument("--confidence", type=float, default=0.95)
    stats.add_argument("--seed", type=int, default=0)


def _add_section_args(parser: argparse.ArgumentParser) -> None:
    cal = parser.add_argument_group("calibration and robustness")
    cal.add_argument("--fit-split", default="train",
                     help="split the calibrators are fitted on, or 'none'")  # fmt: skip
    cal.add_argument("--fit-queries", type=positive_int, default=100)
    cal.add_argument("--perturbations", nargs="+", default=list(DEFAULT_PERTURBATIONS),
                     help=f"'none' or names from: {' '.join(sorted(PERTURBATIONS))}")  # fmt: skip
    cal.add_argument("--robustness-top-k", type=positive_int, default=20)
    cal.add_argument("--strength", type=float, default=0.2)
    dense = parser.add_argument_group("dual encoder")
    dense.add_argument("--dense-model", default="default", help="bi-encoder (default: MiniLM)")
    dense.add_argument("--dense-max-length", type=positive_int, default=256)
    dense.add_argument("--dense-cache-dir", type=Path, default=None,
                       help="embedding cache (default: the one crossrank retrieve uses)")  # fmt: skip
    cost = parser.add_argument_group("cost")
    cost.add_argument("--cpu-watts", type=float, default=DEFAULT_CPU_WATTS_PER_CORE,
                      help="watts per busy CPU core for the energy estimate")  # fmt: skip
    cost.add_argument("--gpu-watts", type=float, default=DEFAULT_GPU_WATTS)
    cost.add_argument("--min-gain-per-s", type=float, default=0.0,
                      help="break-even threshold: metric gain per extra second")  # fmt: skip


def config_from_args(args: argparse.Namespace) -> ReportConfig:
    """The :class:`ReportConfig` the parsed arguments describe."""
    perturbations = () if args.perturbations == ["none"] else tuple(args.perturbations)
    return ReportConfig(
        data=args.data,
        split=args.split,
        systems=parse_systems(args.systems),
        model=args.model,
        first_stage=parse_system(args.first_stage),
        baseline=args.baseline,
        top_k=args.top_k,
        depths=tuple(args.depths),
        max_lengths=tuple(args.max_lengths),
        backends=tuple(args.backends),
        device=args.device,
        threads=args.threads,
        latency_queries=args.queries,
        metrics=tuple(args.metrics),
        stats=StatsSettings(args.test, args.samples, args.confidence, seed=args.seed),
        fit_split=None if args.fit_split == "none" else args.fit_split,
        fit_queries=args.fit_queries,
        perturbations=perturbations,
        robustness_top_k=args.robustness_top_k,
        strength=args.strength,
        dense_model=args.dense_model,
        dense_max_length=args.dense_max_length,
        dense_cache_dir=args.dense_cache_dir,
        power=PowerModel(args.cpu_watts, args.gpu_watts),
        min_gain_per_s=args.min_gain_per_s,
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_output_dir(args.out)  # fail before minutes of scoring, not after
    command = command_line(config, args.out)
    if config.dense_cache_dir is None:
        config = _with_default_cache(config, args)
    started = time.perf_counter()
    report = build_report(config, command=command, progress=not args.quiet)
    write_report(report, args.out)
    logger.info("report written to %s in %.0fs", args.out, time.perf_counter() - started)
    return 0


def _with_default_cache(config: ReportConfig, args: argparse.Namespace) -> ReportConfig:
    # The same cache `crossrank retrieve` uses, so the corpus is embedded once per model.
    return replace(config, dense_cache_dir=default_cache_dir(args.data, args.dense_model))
