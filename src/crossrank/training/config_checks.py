"""Small validators of the training config's fields; each names the bad value.

>>> parse_size("15MB"), parse_size("2KiB")
(15000000, 2048)
>>> positive("model.max_length", 0)
Traceback (most recent call last):
crossrank.errors.ConfigError: model.max_length must be > 0, got 0
"""

from __future__ import annotations

import math
import re

from crossrank.errors import ConfigError

__all__ = ["choice", "finite", "non_negative", "parse_size", "positive", "probability"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)\s*$")
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def parse_size(text: str, where: str = "size") -> int:
    """Bytes of a size such as ``"15MB"`` (decimal units, as Hugging Face uses) or ``"1GiB"``.

    >>> parse_size("15MB"), parse_size("2KiB")
    (15000000, 2048)
    """
    match = _SIZE.match(text) if isinstance(text, str) else None
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{where} must be a size such as '15MB' or '1GiB', got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def positive(where: str, value: float | None) -> None:
    if value is not None and (isinstance(value, bool) or not value > 0):
        raise ConfigError(f"{where} must be > 0, got {value!r}")


def non_negative(where: str, value: float) -> None:
    if isinstance(value, bool) or not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{where} must be a finite number >= 0, got {value!r}")


def finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def probability(where: str, value: float | None) -> None:
    if value is not None and not (0.0 <= value < 1.0):
        raise ConfigError(f"{where} must be in [0, 1), got {value!r}")


def choice(where: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{where} must be one of {options}, got {value!r}")
