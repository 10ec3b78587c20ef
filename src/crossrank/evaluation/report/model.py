"""The frozen data of a report: one dataclass per section, gathered in :class:`Report`.

Sections hold numbers only (no formatting); :mod:`~crossrank.evaluation.report.layout`
turns them into tables and :func:`report_json` into the versioned ``report.json``.
Missing values (an interval over fewer than 2 queries, the baseline's own p-value) are
None, never NaN, so the JSON stays valid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from crossrank.errors import ConfigError
from crossrank.evaluation.efficiency import LatencyStats, ModelSize, PowerModel
from crossrank.evaluation.robustness import RobustnessResult
from crossrank.evaluation.significance import TestName
from crossrank.evaluation.tradeoff import GapRow

__all__ = [
    "SCHEMA_VERSION",
    "AccuracyRow",
    "AccuracySection",
    "AccuracyTable",
    "CalibrationRow",
    "CalibrationSection",
    "DepthRow",
    "EfficiencyRow",
    "EfficiencySection",
    "FigureFile",
    "Report",
    "RobustnessSection",
    "StatsSettings",
    "SystemInfo",
    "ThroughputRow",
    "TradeoffSection",
    "report_json",
]

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class StatsSettings:
    """How intervals and significance are computed in every table of the report."""

    test: TestName = "t"
    n_samples: int = 10_000
    confidence: float = 0.95
    alpha: float = 0.05
    seed: int = 0


@dataclass(frozen=True, slots=True)
class AccuracyRow:
    """A system's metric mean, bootstrap interval and p-value against the baseline."""

    system: str
    mean: float
    ci_low: float
    ci_high: float
    p_value: float | None
    p_adjusted: float | None


@dataclass(frozen=True, slots=True)
class AccuracyTable:
    """One metric for several systems; p-values are Holm-adjusted over the table's rows."""

    metric: str
    baseline: str
    n_queries: int
    rows: tuple[AccuracyRow, ...]

    def row(self, system: str) -> AccuracyRow:
        """The row of ``system``; ConfigError when absent."""
        for row in self.rows:
            if row.system == system:
                return row
        raise ConfigError(f"system {system!r} is not in the {self.metric} table")


@dataclass(frozen=True, slots=True)
class SystemInfo:
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class AccuracySection:
    systems: tuple[SystemInfo, ...]
    tables: tuple[AccuracyTable, ...]  # one per metric, in the requested order


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    """Calibration of one way of turning scores into probabilities."""

    variant: str
    parameters: str
    brier: float
    ece: float
    log_loss: float


@dataclass(frozen=True, slots=True)
class CalibrationSection:
    """Calibration of the re-ranker's probabilities on the report split's candidates.

    Calibrators are fitted on ``fit_split`` (never on the report split); ``fit_split`` is
    None when fitting was switched off.
    """

    system: str
    n_pairs: int
    n_positive: int
    n_bins: int
    fit_split: str | None
    fit_queries: int
    fit_pairs: int
    rows: tuple[CalibrationRow, ...]
    figures: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RobustnessSection:
    system: str
    top_k: int
    strength: float
    seed: int
    rows: tuple[RobustnessResult, ...]


@dataclass(frozen=True, slots=True)
class EfficiencyRow:
    """Latency and energy per query of one configuration, on the sampled queries.

    ``latency`` is the whole pipeline (first stage, plus re-ranking for re-rank rows);
    ``rerank_latency`` and ``per_pair`` cover re-ranking alone.
    """

    name: str
    stage: str
    max_length: int | None
    backend: str | None
    depth: int | None
    latency: LatencyStats
    rerank_latency: LatencyStats | None
    per_pair: LatencyStats | None
    queries_per_s: float
    cpu_s_per_query: float
    joules_per_query: float


@dataclass(frozen=True, slots=True)
class ThroughputRow:
    """The bulk scoring pass of one re-ranker configuration over every candidate pair."""

    name: str
    max_length: int
    backend: str
    pairs: int
    wall_s: float
    pairs_per_s: float
    cpu_s: float
    joules_per_pair: float
    rss_before_bytes: int
    peak_rss_bytes: int
    rss_method: str
    gpu_peak_bytes: int | None
    model: ModelSize


@dataclass(frozen=True, slots=True)
class EfficiencySection:
    hardware: str
    device: str
    power: PowerModel
    latency_queries: int
    accuracy: AccuracyTable
    rows: tuple[EfficiencyRow, ...]
    throughput: tuple[ThroughputRow, ...]
    frontier: tuple[str, ...]
    figure: str


@dataclass(frozen=True, slots=True)
class DepthRow:
    """Re-ranking cost per query at one depth, cross- and dual-encoder (sampled queries)."""

    depth: int
    cross_latency: LatencyStats
    dual_latency: LatencyStats
    cross_cpu_s: float
    dual_cpu_s: float
    cross_joules: float
    dual_joules: float


@dataclass(frozen=True, slots=True)
class TradeoffSection:
    """Cross- vs dual-encoder re-ranking the same first-stage candidates.

    ``accuracy`` holds ``cross@k`` and ``dual@k`` for every depth (and the baseline);
    ``gaps`` compare them at ``depth`` overall and by query type.
    """

    cross: str
    dual: str
    first_stage: str
    metric: str
    depth: int
    accuracy: AccuracyTable
    depths: tuple[DepthRow, ...]
    gaps: tuple[GapRow, ...]
    break_even_depth: int
    min_gain_per_s: float
    figure: str


@dataclass(frozen=True, slots=True)
class FigureFile:
    """A PNG of the report: written as ``name`` next to report.md and report.html."""

    name: str
    caption: str
    png: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if "/" in self.name or not self.name.endswith(".png"):
            raise ConfigError(f"figure name must be a plain *.png file name, got {self.name!r}")
        if not self.png.startswith(b"\x89PNG"):
            raise ConfigError(f"figure {self.name!r} is not PNG data")


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the report says; optional sections are None when not requested."""

    title: str
    created: str
    command: str
    data: str
    split: str
    n_queries: int
    stats: StatsSettings
    settings: tuple[tuple[str, str], ...]
    accuracy: AccuracySection
    calibration: CalibrationSection | None
    robustness: RobustnessSection | None
    efficiency: EfficiencySection | None
    tradeoff: TradeoffSection | None
    figures: tuple[FigureFile, ...]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [f.name for f in self.figures]
        if len(set(names)) != len(names):
            raise ConfigError(f"figure names must be unique, got {names}")


def report_json(report: Report) -> dict[str, object]:
    """The JSON object of ``report.json``: every section, figures by file name.

    >>> report_json(report)["schema_version"]  # doctest: +SKIP
    1
    """
    payload = dataclasses.asdict(report)
    payload["figures"] = [{"name": f.name, "caption": f.caption} for f in report.figures]
    payload["settings"] = dict(report.settings)
    return {"schema_version": SCHEMA_VERSION, "kind": "crossrank-report", **payload}
