"""Build the accuracy, efficiency and cross- vs dual-encoder sections from computed runs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from crossrank.data.types import Qrels, Run
from crossrank.evaluation.efficiency import LatencyResult, PowerModel
from crossrank.evaluation.metrics import evaluate
from crossrank.evaluation.pareto import ParetoPoint, pareto_front, pareto_png
from crossrank.evaluation.report.config import ReportConfig
from crossrank.evaluation.report.figures import depth_png
from crossrank.evaluation.report.model import (
    AccuracySection,
    DepthRow,
    EfficiencyRow,
    EfficiencySection,
    FigureFile,
    SystemInfo,
    ThroughputRow,
    TradeoffSection,
)
from crossrank.evaluation.report.scoring import DualScores, ScoredConfig
from crossrank.evaluation.report.stats import accuracy_table
from crossrank.evaluation.report.systems import FirstStage
from crossrank.evaluation.tradeoff import (
    DepthPoint,
    break_even_depth,
    feature_buckets,
    gap_rows,
    query_features,
    rerank_at_depth,
)

__all__ = ["accuracy_section", "efficiency_section", "per_query", "tradeoff_section"]

PARETO_FILE = "pareto.png"
DEPTH_FILE = "depth.png"


def per_query(run: Run, qrels: Qrels, metric: str) -> dict[str, float]:
    """Per-query values of one metric over every judged query (missing answers score 0)."""
    return evaluate(run, qrels, [metric]).per_query[metric]


def accuracy_section(
    runs: Mapping[str, Run], descriptions: Mapping[str, str], qrels: Qrels, config: ReportConfig
) -> AccuracySection:
    """One accuracy table per metric over the named runs, in ``runs`` order."""
    results = {name: evaluate(run, qrels, list(config.metrics)) for name, run in runs.items()}
    metrics = next(iter(results.values())).metrics
    tables = tuple(
        accuracy_table(
            {name: r.per_query[metric] for name, r in results.items()},
            config.baseline,
            metric,
            config.stats,
        )
        for metric in metrics
    )
    systems = tuple(SystemInfo(name, descriptions[name]) for name in runs)
    return AccuracySection(systems, tables)


def efficiency_section(
    config: ReportConfig,
    *,
    stages: Mapping[str, FirstStage],
    first: FirstStage,
    scored: Sequence[ScoredConfig],
    qrels: Qrels,
    hardware: tuple[str, str],
) -> tuple[EfficiencySection, FigureFile]:
    """Accuracy, latency and energy of every first stage and re-ranker configuration x depth."""
    metric = config.primary_metric
    values = {name: per_query(s.run, qrels, metric) for name, s in stages.items()}
    rows = [
        _row(s.name, "first stage", config=None, total=s.latency, rerank=None, power=config.power)
        for s in stages.values()
        if s.latency is not None
    ]
    for cfg in scored:
        for depth in config.depths_with_top_k:
            name = f"{first.name}+{cfg.name}@{depth}"
            values[name] = per_query(rerank_at_depth(first.run, cfg.scores, depth), qrels, metric)
            rerank = cfg.latency[depth]
            total = rerank if first.latency is None else first.latency.plus(rerank)
            rows.append(_row(name, "re-rank", config=(cfg, depth), total=total, rerank=rerank,
                             power=config.power))  # fmt: skip
    table = accuracy_table(values, config.baseline, metric, config.stats)
    points = [
        ParetoPoint(r.name, r.latency.p50_ms, table.row(r.name).mean, _group(r)) for r in rows
    ]
    frontier = tuple(points[i].label for i in pareto_front(points))
    png = pareto_png(points, x_label="median latency per query (ms, log scale)", y_label=metric,
                     title=f"{metric} vs latency per query", label_groups=("first stage",))  # fmt: skip
    section = EfficiencySection(
        hardware=hardware[0],
        device=hardware[1],
        power=config.power,
        latency_queries=config.latency_queries,
        accuracy=table,
        rows=tuple(rows),
        throughput=tuple(_throughput_row(cfg) for cfg in scored),
        frontier=frontier,
        figure=PARETO_FILE,
    )
    caption = f"{metric} vs median latency per query; the dashed line is the Pareto frontier"
    return section, FigureFile(PARETO_FILE, caption, png)


def _throughput_row(cfg: ScoredConfig) -> ThroughputRow:
    t = cfg.throughput
    return ThroughputRow(
        name=cfg.name,
        max_length=cfg.max_length,
        backend=cfg.backend,
        pairs=t.pairs,
        wall_s=t.cost.wall_s,
        pairs_per_s=t.pairs_per_s,
        cpu_s=t.cost.cpu_s,
        joules_per_pair=t.joules_per_pair,
        rss_before_bytes=t.cost.rss_before_bytes,
        peak_rss_bytes=t.cost.peak_rss_bytes,
        rss_method=t.cost.rss_method,
        gpu_peak_bytes=t.cost.gpu_peak_bytes,
        model=cfg.size,
    )


def _group(row: EfficiencyRow) -> str:
    if row.backend is None:
        return "first stage"
    return f"L={row.max_length}, {row.backend}"


def _row(
    name: str,
    stage: str,
    *,
    config: tuple[ScoredConfig, int] | None,
    total: LatencyResult,
    rerank: LatencyResult | None,
    power: PowerModel,
) -> EfficiencyRow:
    cfg, depth = config if config is not None else (None, None)
    energy = total.energy_per_query(power)
    return EfficiencyRow(
        name=name,
        stage=stage,
        max_length=None if cfg is None else cfg.max_length,
        backend=None if cfg is None else cfg.backend,
        depth=depth,
        latency=total.per_query,
        rerank_latency=None if rerank is None else rerank.per_query,
        per_pair=None if rerank is None else rerank.per_pair,
        queries_per_s=total.queries_per_s,
        cpu_s_per_query=energy.cpu_seconds,
        joules_per_query=energy.total_joules,
    )


def tradeoff_section(
    config: ReportConfig,
    first: FirstStage,
    *,
    cross: ScoredConfig,
    dual: DualScores,
    texts: tuple[Mapping[str, str], Mapping[str, str]],
    qrels: Qrels,
    baseline_run: Run,
) -> tuple[TradeoffSection, FigureFile]:
    """Cross vs dual re-ranking of the same candidates at every depth, and by query type.

    ``texts`` are (queries, documents) by id; ``baseline_run`` is ``config.baseline``'s run.
    """
    metric, baseline, depths = config.primary_metric, config.baseline, config.depths_with_top_k
    base_values = per_query(first.run, qrels, metric)
    values = {baseline: per_query(baseline_run, qrels, metric)}
    for d in depths:
        values[f"cross@{d}"] = per_query(rerank_at_depth(first.run, cross.scores, d), qrels, metric)
        values[f"dual@{d}"] = per_query(rerank_at_depth(first.run, dual.scores, d), qrels, metric)
    table = accuracy_table(values, baseline, metric, config.stats)
    top = config.top_k
    buckets = feature_buckets(query_features(texts[0], texts[1], qrels))
    gaps = gap_rows(values, buckets, cross=f"cross@{top}", dual=f"dual@{top}", baseline=baseline,
                    test=config.stats.test, n_samples=config.stats.n_samples,
                    confidence=config.stats.confidence, seed=config.stats.seed)  # fmt: skip
    rows = tuple(_depth_row(d, cross.latency[d], dual.latency[d], config.power) for d in depths)
    first_mean = math.fsum(base_values.values()) / len(base_values)
    points = [DepthPoint(0, first_mean, 0.0)] + [
        DepthPoint(r.depth, table.row(f"cross@{r.depth}").mean, r.cross_latency.mean_ms / 1000)
        for r in rows
    ]
    section = TradeoffSection(
        cross=cross.name,
        dual=dual.name,
        first_stage=first.name,
        metric=metric,
        depth=top,
        accuracy=table,
        depths=rows,
        gaps=tuple(gaps),
        break_even_depth=break_even_depth(points, config.min_gain_per_s),
        min_gain_per_s=config.min_gain_per_s,
        figure=DEPTH_FILE,
    )
    return section, _depth_figure(section, first_mean)


def _depth_figure(section: TradeoffSection, first_mean: float) -> FigureFile:
    table, rows = section.accuracy, section.depths
    png = depth_png([r.depth for r in rows], [table.row(f"cross@{r.depth}").mean for r in rows],
                    [table.row(f"dual@{r.depth}").mean for r in rows],
                    [r.cross_latency.mean_ms for r in rows], [r.dual_latency.mean_ms for r in rows],
                    first_stage=first_mean, metric=section.metric)  # fmt: skip
    caption = f"{section.metric} (left) and mean re-ranking latency per query (right) by depth"
    return FigureFile(DEPTH_FILE, caption, png)


def _depth_row(
    depth: int, cross: LatencyResult, dual: LatencyResult, power: PowerModel
) -> DepthRow:
    cross_energy, dual_energy = cross.energy_per_query(power), dual.energy_per_query(power)
    return DepthRow(
        depth=depth,
        cross_latency=cross.per_query,
        dual_latency=dual.per_query,
        cross_cpu_s=cross_energy.cpu_seconds,
        dual_cpu_s=dual_energy.cpu_seconds,
        cross_joules=cross_energy.total_joules,
        dual_joules=dual_energy.total_joules,
    )
