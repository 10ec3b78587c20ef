"""``crossrank evaluate``: metrics for a run, optionally against a baseline with significance.

The ``--json`` file maps each metric name to the mean of ``--run`` (the CLI contract);
``--details`` writes the full report (every system, per-query values, significance).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.cli.common import add_data_args, add_quiet_arg, positive_int
from crossrank.data import load_collection, read_run
from crossrank.errors import ConfigError
from crossrank.evaluation import (
    TESTS,
    EvalResult,
    compare_results,
    evaluate,
    format_table,
    report_json,
    to_json,
    write_json,
)

DEFAULT_METRICS = ("nDCG@10", "RR@10", "AP@100", "R@100")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_args(parser)
    parser.add_argument("--run", required=True, type=Path, help="TREC run to evaluate")
    parser.add_argument("--baseline", type=Path, help="TREC run to test --run (and --also) against")
    parser.add_argument(
        "--also", nargs="+", type=Path, default=[], help="more runs to compare with the baseline"
    )
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    parser.add_argument("--test", choices=TESTS, default="t", help="paired significance test")
    parser.add_argument(
        "--samples", type=positive_int, default=10_000, help="for randomization/bootstrap"
    )
    parser.add_argument("--json", type=Path, help="write {metric: mean} of --run here")
    parser.add_argument("--details", type=Path, help="write the full JSON report here")
    add_quiet_arg(parser)


def run(args: argparse.Namespace) -> int:
    collection = load_collection(args.data, args.split)
    paths = {_name(args.run): args.run}
    for path in args.also:
        paths[_unique_name(path, paths)] = path
    baseline_name = None
    if args.baseline is not None:
        baseline_name = _unique_name(args.baseline, paths)
        paths[baseline_name] = args.baseline
    elif args.also:
        raise ConfigError("--also needs --baseline to compare against")
    results: dict[str, EvalResult] = {
        name: evaluate(read_run(path), collection.qrels, args.metrics)
        for name, path in paths.items()
    }
    significance = []
    if baseline_name is not None:
        significance = compare_results(
            results, baseline_name, test=args.test, n_samples=args.samples
        )
    print(format_table(results, baseline=baseline_name, significance=significance))
    main_result = results[_name(args.run)]
    if args.json is not None:
        write_json(args.json, to_json(main_result))
    if args.details is not None:
        write_json(args.details, report_json(results, baseline_name, significance))
    return 0


def _name(path: Path) -> str:
    return path.stem or path.name


def _unique_name(path: Path, taken: dict[str, Path]) -> str:
    name = _name(path)
    if name not in taken:
        return name
    return str(path)
