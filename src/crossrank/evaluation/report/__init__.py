"""``crossrank report``: accuracy, calibration, robustness, efficiency and cross- vs
dual-encoder sections of one split, written as report.md, report.html, report.json and PNGs.

Example:
    >>> from crossrank.evaluation.report import ReportConfig, build_report, parse_systems
    >>> config = ReportConfig(Path("examples/tiny"), "test", parse_systems(["bm25", "rerank"]),
    ...                       model="path/to/cross-encoder")  # doctest: +SKIP
    >>> write_report(build_report(config, command="..."), "reports/tiny")  # doctest: +SKIP
"""

from crossrank.evaluation.report.config import (
    DEFAULT_PERTURBATIONS,
    ReportConfig,
    SystemSpec,
    parse_system,
    parse_systems,
)
from crossrank.evaluation.report.model import SCHEMA_VERSION, Report, StatsSettings, report_json
from crossrank.evaluation.report.pipeline import build_report
from crossrank.evaluation.report.settings import command_line
from crossrank.evaluation.report.writer import REPORT_FILES, check_output_dir, write_report

__all__ = [
    "DEFAULT_PERTURBATIONS",
    "REPORT_FILES",
    "SCHEMA_VERSION",
    "Report",
    "ReportConfig",
    "StatsSettings",
    "SystemSpec",
    "build_report",
    "check_output_dir",
    "command_line",
    "parse_system",
    "parse_systems",
    "report_json",
    "write_report",
]
