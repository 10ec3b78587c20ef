"""Arguments and helpers shared by the CLI verbs."""

from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.errors import ConfigError


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="BEIR collection directory")
    parser.add_argument(
        "--split", required=True, help="qrels split, e.g. dev (reads qrels/<split>.tsv)"
    )


def add_quiet_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars or info messages")


def positive_int(text: str) -> int:
    """argparse type: a strictly positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_pair(text: str, name: str) -> tuple[int, int]:
    """Parse ``"a,b"`` into two positive ints, e.g. ``--passages 128,64``."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ConfigError(f"{name} must look like 'WINDOW,STRIDE', got {text!r}")
    try:
        first, second = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{name} must be two integers 'WINDOW,STRIDE', got {text!r}") from None
    if first <= 0 or second <= 0:
        raise ConfigError(f"{name} values must be > 0, got {text!r}")
    return first, second
