"""Typed errors raised at crossrank's boundaries.

Every error names the offending value (file, line, id, argument) so a user can fix
the input without reading the source.

Example:
    >>> from crossrank.errors import DataFormatError
    >>> str(DataFormatError("corpus.jsonl", 3, "missing field '_id'"))
    "corpus.jsonl:3: missing field '_id'"
"""

from __future__ import annotations

from pathlib import Path


class CrossrankError(Exception):
    """Base class of every error crossrank raises on purpose."""


class ConfigError(CrossrankError, ValueError):
    """An argument or configuration value is invalid; the message names it."""


class DataFormatError(CrossrankError, ValueError):
    """A data file is malformed. Carries the path and 1-based line number."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class MissingDataError(CrossrankError, FileNotFoundError):
    """A required file or directory does not exist."""


class ModelLoadError(CrossrankError, ValueError):
    """A model directory or id cannot be loaded (no weights, mismatched config, ...)."""


class BackendUnavailableError(CrossrankError, RuntimeError):
    """The requested inference backend cannot run here (missing package or device)."""


def require_positive(name: str, value: int | float) -> None:
    """Raise ConfigError unless ``value`` > 0.

    >>> require_positive("top_k", 10)
    """
    if isinstance(value, bool) or not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


class DataWarning(UserWarning):
    """Something in the input was skipped or repaired on purpose; the message counts it."""
