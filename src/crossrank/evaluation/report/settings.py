"""The settings table of a report and the exact command line that reproduces it.

Example:
    >>> from crossrank.evaluation.report.config import parse_systems
    >>> cfg = ReportConfig(Path("examples/tiny"), "test", parse_systems(["bm25"]))
    >>> command_line(cfg, Path("out")).split()[:6]
    ['crossrank', 'report', '--data', 'examples/tiny', '--split', 'test']
"""

from __future__ import annotations

import shlex
from pathlib import Path

from crossrank.evaluation.report.config import ReportConfig

__all__ = ["command_line", "report_settings"]


def report_settings(config: ReportConfig) -> tuple[tuple[str, str], ...]:
    """(setting, value) rows describing ``config``."""
    s, p = config.stats, config.power
    rows = [
        ("systems", " ".join(spec.spelling for spec in config.systems)),
        ("baseline", config.baseline),
        ("re-ranker model", config.model or "-"),
        ("re-ranker first stage", config.first_stage.spelling),
        ("candidates per query (top-k)", str(config.top_k)),
        ("depths", " ".join(map(str, config.depths_with_top_k))),
        ("max lengths", " ".join(map(str, config.max_lengths))),
        ("backends", " ".join(config.backends)),
        ("device", config.device or "auto"),
        ("threads", str(config.threads or "default")),
        ("latency sample (queries)", str(config.latency_queries)),
        ("metrics", " ".join(config.metrics)),
        ("significance", f"{s.test}, Holm-adjusted, alpha {s.alpha:g}"),
        ("bootstrap", f"{s.n_samples} samples, {s.confidence:.0%} intervals, seed {s.seed}"),
        ("calibration fit", _fit(config)),
        ("perturbations", " ".join(config.perturbations) or "none"),
        ("robustness top-k / strength", f"{config.robustness_top_k} / {config.strength:g}"),
        ("dual encoder", f"{config.dense_model} (max length {config.dense_max_length})"),
        ("power model", f"{p.cpu_watts_per_core:g} W per busy CPU core, {p.gpu_watts:g} W GPU"),
        ("break-even threshold", f"{config.min_gain_per_s:g} metric per second"),
    ]
    return tuple(rows)


def _fit(config: ReportConfig) -> str:
    if config.fit_split is None:
        return "none"
    return f"{config.fit_split} ({config.fit_queries} queries, BM25 top {config.top_k})"


def command_line(config: ReportConfig, out: Path) -> str:
    """A ``crossrank report`` command with every option explicit."""
    s, p = config.stats, config.power
    args = [
        "crossrank", "report", "--data", str(config.data), "--split", config.split,
        "--systems", *(spec.spelling for spec in config.systems),
        "--first-stage", config.first_stage.spelling, "--baseline", config.baseline,
        "--top-k", str(config.top_k), "--depths", *map(str, config.depths),
        "--max-lengths", *map(str, config.max_lengths), "--backends", *config.backends,
        "--queries", str(config.latency_queries), "--metrics", *config.metrics,
        "--test", s.test, "--samples", str(s.n_samples), "--confidence", f"{s.confidence:g}",
        "--seed", str(s.seed), "--fit-split", config.fit_split or "none",
        "--fit-queries", str(config.fit_queries),
        "--perturbations", *(config.perturbations or ("none",)),
        "--robustness-top-k", str(config.robustness_top_k), "--strength", f"{config.strength:g}",
        "--dense-model", config.dense_model, "--dense-max-length", str(config.dense_max_length),
        "--cpu-watts", f"{p.cpu_watts_per_core:g}", "--gpu-watts", f"{p.gpu_watts:g}",
        "--min-gain-per-s", f"{config.min_gain_per_s:g}",
    ]  # fmt: skip
    if config.model:
        args += ["--model", config.model]
    if config.device:
        args += ["--device", config.device]
    if config.threads:
        args += ["--threads", str(config.threads)]
    if config.dense_cache_dir:
        args += ["--dense-cache-dir", str(config.dense_cache_dir)]
    return shlex.join([*args, "--out", str(out)])
