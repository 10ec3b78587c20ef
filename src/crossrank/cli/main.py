"""The ``crossrank`` command line: one verb per module, errors printed without tracebacks.

Only the chosen verb's module is imported, so ``crossrank evaluate`` does not pay for
loading torch and transformers.

Example:
    $ crossrank retrieve --data examples/tiny --split test --retriever bm25 --top-k 10 --out bm25.run
    $ crossrank evaluate --data examples/tiny --split test --run bm25.run
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from crossrank import __version__
from crossrank.errors import CrossrankError

# verb -> (module defining add_arguments(parser) and run(args) -> int, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "retrieve": (
        "crossrank.cli.retrieve",
        "first-stage retrieval (BM25, dense, hybrid) into a TREC run",
    ),
    "rerank": ("crossrank.cli.rerank", "re-score a run's top-k candidates with a cross-encoder"),
    "evaluate": ("crossrank.cli.evaluate", "score runs against qrels, with paired significance"),
    "serve": ("crossrank.cli.serve", "HTTP reranking server (Cohere v2 and TEI shapes)"),
    "train": ("crossrank.cli.train", "train a cross-encoder from a TOML recipe (DDP via torchrun)"),
    "explain": ("crossrank.cli.explain", "explain scores (attributions, attention, sentences)"),
    "report": ("crossrank.cli.report", "accuracy, calibration, robustness and efficiency report"),
    "calibrate": (
        "crossrank.cli.calibrate",
        "fit temperature/Platt scaling on a split, save it with the model",
    ),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported and its arguments loaded."""
    parser = argparse.ArgumentParser(
        prog="crossrank", description="Cross-encoder re-ranking for information retrieval."
    )
    parser.add_argument("--version", action="version", version=f"crossrank {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if command == name:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    # transformers' "Loading weights" bars are noise next to our own progress bars.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(args_list)
    level = logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on import
    try:
        return int(args.handler(args))
    except CrossrankError as exc:
        print(f"crossrank {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crossrank {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
