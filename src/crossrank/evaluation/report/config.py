"""What a report run computes: systems, re-ranker configurations, samples and statistics.

Systems are ``bm25``, ``dense``, ``hybrid`` (first stages built here), ``rerank`` (the
re-ranker over ``first_stage``'s top ``top_k``) and ``run:PATH`` (an existing TREC run,
named after its file stem).

Example:
    >>> [s.name for s in parse_systems(["bm25", "run:runs/my-run.trec", "rerank"])]
    ['bm25', 'my-run', 'rerank']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from crossrank.errors import ConfigError, require_positive
from crossrank.evaluation.efficiency import PowerModel
from crossrank.evaluation.metrics import parse_metrics
from crossrank.evaluation.perturbations import PERTURBATIONS
from crossrank.evaluation.report.model import StatsSettings
from crossrank.inference.backends import BACKEND_NAMES

__all__ = [
    "DEFAULT_PERTURBATIONS",
    "FIRST_STAGES",
    "RERANK",
    "ReportConfig",
    "SystemSpec",
    "parse_system",
    "parse_systems",
]

FIRST_STAGES = ("bm25", "dense", "hybrid")
RERANK = "rerank"
DEFAULT_PERTURBATIONS = (
    "query_typos",
    "query_delete_terms",
    "doc_shuffle_sentences",
    "doc_append_irrelevant",
)
SystemKind = Literal["bm25", "dense", "hybrid", "rerank", "run"]


@dataclass(frozen=True, slots=True)
class SystemSpec:
    """One system of the report; ``path`` is set for ``run:PATH`` systems only."""

    name: str
    kind: SystemKind
    path: Path | None = None

    @property
    def spelling(self) -> str:
        """How the system is written on the command line."""
        return f"run:{self.path}" if self.kind == "run" else self.kind


def parse_system(text: str) -> SystemSpec:
    """``bm25`` | ``dense`` | ``hybrid`` | ``rerank`` | ``run:PATH``.

    >>> parse_system("run:x/bm25-tuned.run")
    SystemSpec(name='bm25-tuned', kind='run', path=PosixPath('x/bm25-tuned.run'))
    """
    if text in (*FIRST_STAGES, RERANK):
        return SystemSpec(text, text)  # type: ignore[arg-type]
    if text.startswith("run:") and len(text) > 4:
        path = Path(text[4:])
        return SystemSpec(path.stem or path.name, "run", path)
    raise ConfigError(
        f"unknown system {text!r}; use bm25, dense, hybrid, rerank or run:PATH (a TREC run)"
    )


def parse_systems(texts: Sequence[str]) -> tuple[SystemSpec, ...]:
    """Parse and check that system names are unique."""
    specs = tuple(parse_system(t) for t in texts)
    names = [s.name for s in specs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"system name {duplicate!r} appears twice in --systems")
    if not specs:
        raise ConfigError("--systems must name at least one system")
    return specs


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """Every choice of a report run; validated on construction."""

    data: Path
    split: str
    systems: tuple[SystemSpec, ...]
    model: str | None = None
    first_stage: SystemSpec = field(default_factory=lambda: SystemSpec("bm25", "bm25"))
    baseline: str = "bm25"
    top_k: int = 100
    depths: tuple[int, ...] = (10, 20, 50, 100)
    max_lengths: tuple[int, ...] = (512,)
    backends: tuple[str, ...] = ("auto",)
    device: str | None = None
    threads: int | None = None
    latency_queries: int = 20
    metrics: tuple[str, ...] = ("nDCG@10", "RR@10", "AP@100", "R@100")
    stats: StatsSettings = field(default_factory=StatsSettings)
    fit_split: str | None = "train"
    fit_queries: int = 100
    perturbations: tuple[str, ...] = DEFAULT_PERTURBATIONS
    robustness_top_k: int = 20
    strength: float = 0.2
    dense_model: str = "default"
    dense_max_length: int = 256
    dense_cache_dir: Path | None = None
    power: PowerModel = field(default_factory=PowerModel)
    min_gain_per_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("top_k", "latency_queries", "fit_queries", "robustness_top_k",
                     "dense_max_length"):  # fmt: skip
            _positive_int(name, getattr(self, name))
        for name in ("depths", "max_lengths"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"{name} must be distinct values, got {values!r}")
            for value in values:
                _positive_int(name, value)
        if max(self.depths) > self.top_k:
            raise ConfigError(f"depths {self.depths} must not exceed --top-k {self.top_k}")
        self._check_names()
        parse_metrics(list(self.metrics))
        unknown = [p for p in self.perturbations if p not in PERTURBATIONS]
        if unknown:
            raise ConfigError(
                f"unknown perturbations {unknown}; choose from {sorted(PERTURBATIONS)}"
            )
        if not 0.0 < self.strength <= 1.0:
            raise ConfigError(f"strength must be in (0, 1], got {self.strength!r}")
        if not math.isfinite(self.min_gain_per_s) or self.min_gain_per_s < 0:
            raise ConfigError(f"min_gain_per_s must be >= 0, got {self.min_gain_per_s!r}")
        if self.fit_split == self.split:
            raise ConfigError(
                f"--fit-split {self.fit_split!r} is the report split: calibrators fitted on "
                "the split they are judged on would look better than they are"
            )

    def _check_names(self) -> None:
        bad = [b for b in self.backends if b not in BACKEND_NAMES]
        if bad or not self.backends or len(set(self.backends)) != len(self.backends):
            raise ConfigError(f"backends must be distinct names of {BACKEND_NAMES}, got {bad}")
        if self.first_stage.kind == RERANK:
            raise ConfigError("the first stage cannot be 'rerank'")
        if self.wants_rerank and not self.model:
            raise ConfigError("system 'rerank' needs --model (a cross-encoder directory or id)")
        names = {s.name for s in self.systems} | {self.first_stage.name}
        if self.baseline not in names:
            raise ConfigError(
                f"baseline {self.baseline!r} must be one of the systems {sorted(names)}"
            )

    @property
    def wants_rerank(self) -> bool:
        return any(s.kind == RERANK for s in self.systems)

    @property
    def depths_with_top_k(self) -> tuple[int, ...]:
        """The requested depths plus ``top_k`` (the ``rerank`` system's depth), ascending."""
        return tuple(sorted({*self.depths, self.top_k}))

    @property
    def primary_metric(self) -> str:
        return str(parse_metrics([self.metrics[0]])[0])


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an int, got {value!r}")
    require_positive(name, value)
