"""Architecture settings of a recipe's ``[model]`` table: ``arch``, ``interaction``,
``train_embeddings``, and their validation.

``arch`` is the cross-encoder, CEDR (a cross-encoder with kernel pooling over its layers) or
an interaction architecture (K-NRM, Conv-KNRM, tensor, co-attention, ...); ``interaction``
overrides fields of that architecture's config dataclass, each type-checked.
:class:`ArchConfig` is the base of :class:`~crossrank.training.config.ModelConfig`, so the
TOML keys stay in ``[model]``.

Example:
    >>> ArchConfig(arch="tensor", interaction={"factorization": "cp"}).interaction["factorization"]
    'cp'
    >>> ArchConfig(arch="bert")
    Traceback (most recent call last):
    crossrank.errors.ConfigError: model.arch must be one of (...), got 'bert'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from crossrank.errors import ConfigError
from crossrank.models.cedr import CEDRConfig
from crossrank.models.interaction.serialization import ARCHITECTURES
from crossrank.training.config_checks import choice
from crossrank.training.config_io import coerce_table

__all__ = [
    "ARCHS",
    "CEDR",
    "CROSS_ENCODER",
    "ArchConfig",
    "interaction_config",
    "parse_interaction",
]

CROSS_ENCODER = "cross-encoder"
# A cross-encoder with CEDR-KNRM kernel pooling over its layers (crossrank.models.cedr).
CEDR = "cedr"
# model.arch: the cross-encoder, CEDR, or an interaction model (K-NRM, Conv-KNRM, tensor, ...).
ARCHS = (CROSS_ENCODER, CEDR, *ARCHITECTURES)
# ModelConfig fields that only a transformer encoder (cross-encoder or CEDR) has.
ENCODER_ONLY = ("keep_layers", "hidden_dropout", "attention_dropout")


@dataclass(frozen=True)
class ArchConfig:
    """Which model ``[model]`` builds (see the module docstring).

    ``train_embeddings`` unfreezes an interaction model's term embeddings; ``interaction``
    overrides fields of the interaction architecture's config (or of ``CEDRConfig``).
    """

    arch: str = CROSS_ENCODER
    train_embeddings: bool = False
    interaction: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_arch({})

    def _check_arch(self, encoder_only: Mapping[str, Any]) -> None:
        """Validate the arch fields; ``encoder_only`` are the set ENCODER_ONLY settings."""
        object.__setattr__(self, "interaction", _frozen_table(self.interaction))
        choice("model.arch", self.arch, ARCHS)
        if self.arch == CROSS_ENCODER:
            if self.interaction or self.train_embeddings:
                raise ConfigError(
                    "model.interaction and model.train_embeddings apply to interaction "
                    f"architectures {tuple(ARCHITECTURES)} only, not {CROSS_ENCODER!r}"
                )
            return
        if self.arch == CEDR:
            if self.train_embeddings or "max_length" in self.interaction:
                raise ConfigError(
                    "model.train_embeddings and model.interaction.max_length do not apply to "
                    "arch 'cedr' (its input length is model.max_length)"
                )
            interaction_config(CEDR, self.interaction)
            return
        for name, value in encoder_only.items():
            if value is not None:
                raise ConfigError(
                    f"model.{name} applies to the cross-encoder only, not arch {self.arch!r}"
                )
        interaction_config(self.arch, self.interaction)


def interaction_config(arch: str, overrides: Mapping[str, Any], base: Any | None = None) -> Any:
    """The config dataclass of interaction ``arch``: ``base`` (default: the class defaults)
    with the recipe's ``model.interaction`` overrides, each type-checked.

    >>> interaction_config("tensor", {"factorization": "cp", "rank": 4}).rank
    4
    >>> interaction_config("knrm", {"kernel_sigmaa": 0.1})
    Traceback (most recent call last):
    crossrank.errors.ConfigError: model.interaction: unknown key 'kernel_sigmaa' (known: ...)
    """
    choice("model.arch", arch, (CEDR, *ARCHITECTURES))
    config_class = CEDRConfig if arch == CEDR else ARCHITECTURES[arch].config_class
    if "schema_version" in overrides:
        raise ConfigError("model.interaction: schema_version cannot be overridden")
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    try:
        # The TOML coercion checks every key and value type against the dataclass.
        checked = coerce_table(config_class, plain, "", {})
    except (ConfigError, TypeError, ValueError) as err:
        raise ConfigError(f"model.interaction: {err}") from err
    if base is None:
        return checked
    return dataclasses.replace(base, **{name: getattr(checked, name) for name in overrides})


def _frozen_table(table: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of a table of scalars and lists of scalars (lists become tuples)."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"model.interaction must be a table, got {table!r}")
    frozen: dict[str, Any] = {}
    for key, value in table.items():
        items = value if isinstance(value, list | tuple) else (value,)
        if not all(isinstance(v, bool | int | float | str) for v in items):
            raise ConfigError(
                f"model.interaction.{key} must be a number, string, boolean or a list of "
                f"them, got {value!r}"
            )
        frozen[str(key)] = tuple(value) if isinstance(value, list | tuple) else value
    return MappingProxyType(frozen)


def parse_interaction(value: Any, where: str) -> Mapping[str, Any]:
    """The TOML form of ``model.interaction`` (checked against the arch in ``_check_arch``)."""
    if not isinstance(value, dict):
        raise ConfigError(f'{where} must be a table like {{ factorization = "cp" }}')
    return value
