"""Output heads of a cross-encoder and how their logits become scores.

A checkpoint has one linear output layer with ``num_labels`` outputs. crossrank reads those
outputs as one or more *heads*, laid side by side (multi-task = the concatenated outputs of all
heads, sliced per head), so the checkpoint stays a plain Hugging Face
``*ForSequenceClassification`` model that transformers and sentence-transformers load as is.

Head kinds and their score:

* ``binary``: 1 logit; score = the logit (rank-equivalent to its sigmoid, which
  ``activation="sigmoid"`` returns as a calibrated probability).
* ``graded``: k logits for grades 0..k-1; score = expected grade ``sum_i i * softmax(z)_i``.
* ``regression``: 1 output; score = the output.

The layout is persisted in ``config.json`` under ``"crossrank"``
(``{"schema_version": 1, "heads": [...], "primary": name}``); the primary head gives the
ranking score.

Example:
    >>> import numpy as np
    >>> layout = HeadLayout((HeadSpec.binary("rel"), HeadSpec.graded(3, "grade")), primary="grade")
    >>> layout.num_labels
    4
    >>> layout.primary_scores(np.array([[0.5, 0.0, 0.0, 0.0]], dtype=np.float32))
    array([1.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from crossrank.errors import ConfigError, ModelLoadError

HEAD_SCHEMA_VERSION = 1
HeadKind = Literal["binary", "graded", "regression"]
Activation = Literal["none", "sigmoid"]
_KINDS: tuple[str, ...] = ("binary", "graded", "regression")
_ACTIVATIONS: tuple[str, ...] = ("none", "sigmoid")


@dataclass(frozen=True, slots=True)
class HeadSpec:
    """One output head: its name, kind and number of outputs (classes for ``graded``).

    >>> HeadSpec.graded(5).size
    5
    """

    name: str
    kind: HeadKind
    size: int = 1

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"head name must be a non-empty string, got {self.name!r}")
        if self.kind not in _KINDS:
            raise ConfigError(f"head kind must be one of {_KINDS}, got {self.kind!r}")
        if self.kind == "graded" and (not isinstance(self.size, int) or self.size < 2):
            raise ConfigError(f"graded head {self.name!r} needs size >= 2, got {self.size!r}")
        if self.kind != "graded" and self.size != 1:
            raise ConfigError(
                f"{self.kind} head {self.name!r} has exactly 1 output, got {self.size}"
            )

    @classmethod
    def binary(cls, name: str = "relevance") -> HeadSpec:
        return cls(name, "binary", 1)

    @classmethod
    def graded(cls, grades: int, name: str = "relevance") -> HeadSpec:
        return cls(name, "graded", grades)

    @classmethod
    def regression(cls, name: str = "relevance") -> HeadSpec:
        return cls(name, "regression", 1)

    def score(self, logits: np.ndarray, activation: Activation = "none") -> np.ndarray:
        """Scores of this head from its own logit columns (shape ``[n, size]``)."""
        logits = logits.astype(np.float32, copy=False)
        if self.kind == "graded":
            shifted = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(shifted)
            probs /= probs.sum(axis=1, keepdims=True)
            return probs @ np.arange(self.size, dtype=np.float32)
        column = logits[:, 0]
        if activation == "sigmoid":
            if self.kind != "binary":
                raise ConfigError(
                    f"activation='sigmoid' needs a binary head, {self.name!r} is {self.kind}"
                )
            return (1.0 / (1.0 + np.exp(-column.astype(np.float64)))).astype(np.float32)
        return column


@dataclass(frozen=True, slots=True)
class HeadLayout:
    """The heads of a checkpoint, in output-column order, and the primary (ranking) head."""

    heads: tuple[HeadSpec, ...]
    primary: str

    def __post_init__(self) -> None:
        if not self.heads:
            raise ConfigError("a head layout needs at least one head")
        names = [h.name for h in self.heads]
        if len(set(names)) != len(names):
            raise ConfigError(f"head names must be unique, got {names}")
        if self.primary not in names:
            raise ConfigError(f"primary head {self.primary!r} is not one of {names}")

    @classmethod
    def single(cls, head: HeadSpec) -> HeadLayout:
        return cls((head,), head.name)

    @classmethod
    def of(cls, heads: Sequence[HeadSpec], primary: str | None = None) -> HeadLayout:
        """Layout from heads in column order; the first head is primary unless named."""
        heads = tuple(heads)
        if not heads:
            raise ConfigError("heads must not be empty")
        return cls(heads, primary if primary is not None else heads[0].name)

    @property
    def num_labels(self) -> int:
        return sum(h.size for h in self.heads)

    def slices(self) -> dict[str, slice]:
        """Column range of each head in the logit matrix."""
        out: dict[str, slice] = {}
        start = 0
        for head in self.heads:
            out[head.name] = slice(start, start + head.size)
            start += head.size
        return out

    def head(self, name: str) -> HeadSpec:
        for head in self.heads:
            if head.name == name:
                return head
        raise ConfigError(f"no head named {name!r}; heads are {[h.name for h in self.heads]}")

    def scores(self, logits: np.ndarray, activation: Activation = "none") -> dict[str, np.ndarray]:
        """Score of every head (``activation`` applies to binary heads only)."""
        self._check_width(logits)
        check_activation(activation)
        return {
            h.name: h.score(logits[:, cols], activation if h.kind == "binary" else "none")
            for h, cols in zip(self.heads, self.slices().values(), strict=True)
        }

    def primary_scores(self, logits: np.ndarray, activation: Activation = "none") -> np.ndarray:
        """Ranking scores: the primary head's score for every row of ``logits``."""
        self._check_width(logits)
        check_activation(activation)
        return self.head(self.primary).score(logits[:, self.slices()[self.primary]], activation)

    def id2label(self) -> dict[int, str]:
        """Label names per output column, e.g. ``{0: "rel", 1: "grade:0", ...}``."""
        labels: list[str] = []
        for head in self.heads:
            if head.size == 1:
                labels.append(head.name)
            else:
                labels.extend(f"{head.name}:{i}" for i in range(head.size))
        return dict(enumerate(labels))

    def to_config(self) -> dict[str, Any]:
        """The JSON-able ``config.crossrank`` section."""
        return {
            "schema_version": HEAD_SCHEMA_VERSION,
            "heads": [{"name": h.name, "kind": h.kind, "size": h.size} for h in self.heads],
            "primary": self.primary,
        }

    @classmethod
    def from_config(cls, section: Mapping[str, Any], source: str = "config.json") -> HeadLayout:
        """Parse a ``config.crossrank`` section; ModelLoadError when it is malformed."""
        version = section.get("schema_version")
        if version != HEAD_SCHEMA_VERSION:
            raise ModelLoadError(
                f"{source}: crossrank schema_version {version!r} is not supported "
                f"(this crossrank reads version {HEAD_SCHEMA_VERSION})"
            )
        try:
            heads = tuple(HeadSpec(h["name"], h["kind"], int(h["size"])) for h in section["heads"])
            return cls.of(heads, section.get("primary"))
        except (KeyError, TypeError, ValueError) as err:
            raise ModelLoadError(f"{source}: malformed crossrank head section: {err}") from err

    def _check_width(self, logits: np.ndarray) -> None:
        if logits.ndim != 2 or logits.shape[1] != self.num_labels:
            raise ConfigError(
                f"logits of shape {logits.shape} do not fit heads needing {self.num_labels} columns"
            )


def check_activation(activation: str) -> None:
    if activation not in _ACTIVATIONS:
        raise ConfigError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
