"""Line readers that report the file and 1-based line number of every problem.

Files are read as bytes and decoded per line, so invalid UTF-8 is reported at the exact
line instead of surfacing as an anonymous ``UnicodeDecodeError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crossrank.errors import DataFormatError, MissingDataError


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each non-blank line, without the line ending.

    Raises DataFormatError for an empty file or invalid UTF-8, and MissingDataError when
    the file does not exist.
    """
    for number, text, _ in _iter_lines_terminated(path):
        yield number, text


def iter_json_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each JSON-lines record, in one pass.

    A final line that is not valid JSON and lacks its newline is reported as truncated.
    """
    for number, text, terminated in _iter_lines_terminated(path):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = "invalid JSON" if terminated else "truncated JSON record"
            raise DataFormatError(path, number, f"{problem} ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataFormatError(path, number, f"expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def _iter_lines_terminated(path: str | Path) -> Iterator[tuple[int, str, bool]]:
    """Yield ``(line_number, text, ends_with_newline)`` for each non-blank line."""
    p = Path(path)
    if not p.is_file():
        raise MissingDataError(f"{p}: file not found")
    seen_content = False
    with p.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problem = f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                raise DataFormatError(p, number, problem) from None
            terminated = text.endswith("\n")
            text = text.rstrip("\r\n")
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]  # tolerate a UTF-8 byte-order mark written by some editors
            if not text.strip():
                continue
            seen_content = True
            yield number, text, terminated
    if not seen_content:
        raise DataFormatError(p, None, "file is empty")


def require_str_field(
    obj: dict[str, Any], name: str, path: str | Path, line: int, *, allow_int: bool = False
) -> str:
    """Return ``obj[name]`` as a string, or raise DataFormatError naming the field."""
    if name not in obj:
        raise DataFormatError(path, line, f"missing field {name!r}")
    value = obj[name]
    if isinstance(value, str):
        return value
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    kind = "a string or integer" if allow_int else "a string"
    raise DataFormatError(path, line, f"field {name!r} must be {kind}, got {value!r}")
