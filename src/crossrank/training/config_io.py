"""Typed TOML tables <-> frozen config dataclasses, and a small TOML writer for them.

``coerce_table`` turns a parsed TOML table into a dataclass, checking every key against the
dataclass fields and every value against the field's type hint (``int``, ``float``, ``str``,
``bool``, ``X | None``, ``tuple[X, ...]``, ``Mapping[str, X]``, nested dataclasses).
``dump_toml`` writes the plain dicts of :func:`to_plain` back (the standard library reads
TOML but has no writer).

Example:
    >>> print(dump_toml({"seed": 1, "model": {"layers": [0, 2]}, "stages": [{"lr": 2e-05}]}))
    seed = 1
    <BLANKLINE>
    [model]
    layers = [0, 2]
    <BLANKLINE>
    [[stages]]
    lr = 2e-05
    <BLANKLINE>
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from crossrank.errors import ConfigError

__all__ = ["coerce_table", "dump_toml", "to_plain"]

SpecialParsers = Mapping[tuple[type, str], Callable[[Any, str], Any]]
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def coerce_table(cls: type, table: Any, where: str, special: SpecialParsers) -> Any:
    """Build dataclass ``cls`` from a TOML table; ConfigError names the bad key path."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where or 'the recipe'} must be a table, got {table!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [key for key in table if key not in fields]
    if unknown:
        raise ConfigError(f"unknown key {_join(where, unknown[0])!r} (known: {', '.join(fields)})")
    missing = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and name not in table
    ]
    if missing:
        raise ConfigError(f"missing required key {_join(where, missing[0])!r}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, raw in table.items():
        path = _join(where, key)
        parser = special.get((cls, key))
        values[key] = parser(raw, path) if parser else _coerce(raw, hints[key], path, special)
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str, special: SpecialParsers) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where, special)
    if dataclasses.is_dataclass(hint):
        return coerce_table(hint, value, where, special)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]", special) for i, v in enumerate(value))
    if origin is Mapping or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{where}.{k}", special) for k, v in value.items()}
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: Any, where: str) -> Any:
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{where} must be of type {name}, got {value!r}")


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def to_plain(obj: Any) -> Any:
    """Dataclasses -> dicts (None fields dropped), tuples -> lists, mappings -> dicts."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is not None:
                out[f.name] = to_plain(value)
        return out
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    return obj


def dump_toml(data: Mapping[str, Any]) -> str:
    """TOML text of a plain dict: scalars first, then ``[tables]``, then ``[[arrays]]``."""
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    arrays = {k: v for k, v in data.items() if _is_table_array(v)}
    lines.extend(_assignments({k: v for k, v in data.items() if k not in tables | arrays}))
    for key, table in tables.items():
        lines.extend(["", f"[{_key(key)}]", *_assignments(table)])
    for key, items in arrays.items():
        for item in items:
            lines.extend(["", f"[[{_key(key)}]]", *_assignments(item)])
    return "\n".join(lines) + "\n"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _assignments(table: Mapping[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in table.items()]


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) as TOML")
