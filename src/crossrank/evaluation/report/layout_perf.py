"""Blocks of the efficiency and cross- vs dual-encoder sections."""

from __future__ import annotations

from crossrank.evaluation.report.model import (
    AccuracyTable,
    DepthRow,
    EfficiencyRow,
    EfficiencySection,
    StatsSettings,
    ThroughputRow,
    TradeoffSection,
)
from crossrank.evaluation.report.render import Block, Heading, Image, Paragraph, Table
from crossrank.evaluation.report.text import ci_cell, mib, ms, p_cell
from crossrank.evaluation.tradeoff import FEATURES, GapRow

__all__ = ["efficiency_blocks", "tradeoff_blocks"]

_THROUGHPUT_HEADER = ("re-ranker", "pairs", "pairs/s", "CPU s", "J/pair", "RSS before MiB",
                      "peak RSS MiB", "GPU peak MiB", "parameters", "param MiB", "on disk MiB")  # fmt: skip


def efficiency_blocks(section: EfficiencySection | None, stats: StatsSettings) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Efficiency")]
    if section is None:
        return [*blocks, Paragraph("Not computed.")]
    power, acc = section.power, section.accuracy
    blocks.append(
        Paragraph(
            f"Measured on {section.hardware}; device `{section.device}`. Latency: wall time of "
            f"one call per query, over {section.latency_queries} sampled queries, after "
            "untimed warm-up calls (two on CPU, a full pass over the queries on a GPU, where "
            "each new input shape pays for kernel selection once); a re-rank row's latency is "
            "its first stage's plus the "
            "re-ranking of the same query. Energy is an estimate: process CPU seconds x "
            f"{power.cpu_watts_per_core:g} W per busy core, plus GPU seconds (wall time on "
            f"the GPU, an upper bound) x {power.gpu_watts:g} W; memory, idle power and PUE "
            "are not counted."
        )
    )
    header = ("configuration", f"{acc.metric} [CI]", "p", "p50 ms", "p95 ms", "p99 ms",
              "ms/pair p50", "queries/s", "CPU s/query", "J/query", "Pareto")  # fmt: skip
    front = set(section.frontier)
    cells = tuple(_efficiency_cells(r, acc, r.name in front, stats.alpha) for r in section.rows)
    blocks.append(Table(header, cells))
    if section.throughput:
        blocks += [
            Paragraph(
                "Bulk scoring of every candidate pair of the split in one call per re-ranker "
                "configuration: the pass whose scores every depth above reuses. Peak RSS is "
                "the resident-memory high-water mark of that call (model and data included; "
                f"method: {section.throughput[0].rss_method})."
            ),
            Table(_THROUGHPUT_HEADER, tuple(_throughput_cells(t) for t in section.throughput)),
        ]
    caption = f"{acc.metric} vs median latency per query (Pareto frontier dashed)"
    blocks.append(Image(section.figure, caption))
    return blocks


def _efficiency_cells(
    r: EfficiencyRow, acc: AccuracyTable, on_front: bool, alpha: float
) -> tuple[str, ...]:
    row = acc.row(r.name)
    pair = "—" if r.per_pair is None else ms(r.per_pair.p50_ms)
    return (r.name, ci_cell(row), p_cell(row.p_adjusted, alpha), ms(r.latency.p50_ms),
            ms(r.latency.p95_ms), ms(r.latency.p99_ms), pair, f"{r.queries_per_s:.2f}",
            f"{r.cpu_s_per_query:.4f}", f"{r.joules_per_query:.3f}", "yes" if on_front else "")  # fmt: skip


def _throughput_cells(t: ThroughputRow) -> tuple[str, ...]:
    return (t.name, str(t.pairs), f"{t.pairs_per_s:.1f}", f"{t.cpu_s:.1f}",
            f"{t.joules_per_pair:.4f}", mib(t.rss_before_bytes), mib(t.peak_rss_bytes),
            mib(t.gpu_peak_bytes), f"{t.model.parameters:,}", mib(t.model.parameter_bytes),
            mib(t.model.disk_bytes))  # fmt: skip


def tradeoff_blocks(section: TradeoffSection | None, stats: StatsSettings) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Cross- vs dual-encoder")]
    if section is None:
        return [*blocks, Paragraph("Not computed: no re-ranker among the systems.")]
    base = section.accuracy.baseline
    blocks.append(
        Paragraph(
            f"Both re-rank the same `{section.first_stage}` candidates: `{section.cross}` scores "
            f"each (query, document) pair jointly; the {section.dual} takes the inner product "
            "of separately encoded embeddings (documents encoded offline, so its latency is "
            "one query encoding plus a dot product per candidate). `@k` re-orders the top k "
            "and keeps the rest in first-stage order; scores were computed once on the "
            "deepest k."
        )
    )
    header = ("query type", "bucket", "queries", base, "dual", "cross", "gap cross - dual [CI]",
              "p cross vs dual", f"p dual vs {base}", f"p cross vs {base}")  # fmt: skip
    blocks += [
        Heading(3, f"Accuracy gap at depth {section.depth}, by query type"),
        Table(header, tuple(_gap_cells(g, stats.alpha) for g in section.gaps)),
        Paragraph(
            f"{section.metric} per query. Length: word tokens; overlap: share of the query's "
            "content terms found in its most overlapping relevant document; both cut in "
            "terciles (ties go to the lower bucket). The p-values against the baseline are "
            "Holm-adjusted over the two encoders within a bucket."
        ),
        Heading(3, "Cost at the same candidate depth"),
        _depth_table(section, stats.alpha),
        Paragraph(
            f"Break-even depth: {section.break_even_depth} (threshold "
            f"{section.min_gain_per_s:g} {section.metric} per extra second of mean re-ranking "
            "latency per query). From this depth on, no deeper depth gains more "
            f"{section.metric} than the threshold times its extra latency, so re-ranking "
            "deeper stops paying; 0 means even the shallowest re-ranking does not pay."
        ),
        Image(section.figure, f"{section.metric} and re-ranking latency by candidate depth"),
    ]
    return blocks


def _gap_cells(g: GapRow, alpha: float) -> tuple[str, ...]:
    gap = f"{g.gap:+.4f}"
    if g.gap_low is not None and g.gap_high is not None:
        gap += f" [{g.gap_low:+.3f}, {g.gap_high:+.3f}]"
    return (FEATURES.get(g.feature, g.feature), g.bucket, str(g.n_queries),
            f"{g.baseline_mean:.4f}", f"{g.dual_mean:.4f}", f"{g.cross_mean:.4f}", gap,
            p_cell(g.p_cross_vs_dual, alpha), p_cell(g.p_dual_vs_baseline, alpha),
            p_cell(g.p_cross_vs_baseline, alpha))  # fmt: skip


def _depth_table(section: TradeoffSection, alpha: float) -> Table:
    metric = section.accuracy.metric
    header = ("depth", f"cross {metric} [CI]", "p", f"dual {metric} [CI]", "p",
              "cross mean ms", "cross p95 ms", "dual mean ms", "dual p95 ms", "cross CPU s",
              "dual CPU s", "cross J", "dual J")  # fmt: skip
    return Table(header, tuple(_depth_cells(d, section.accuracy, alpha) for d in section.depths))


def _depth_cells(d: DepthRow, acc: AccuracyTable, alpha: float) -> tuple[str, ...]:
    cross, dual = acc.row(f"cross@{d.depth}"), acc.row(f"dual@{d.depth}")
    return (str(d.depth), ci_cell(cross), p_cell(cross.p_adjusted, alpha), ci_cell(dual),
            p_cell(dual.p_adjusted, alpha), ms(d.cross_latency.mean_ms),
            ms(d.cross_latency.p95_ms), ms(d.dual_latency.mean_ms), ms(d.dual_latency.p95_ms),
            f"{d.cross_cpu_s:.4f}", f"{d.dual_cpu_s:.4f}", f"{d.cross_joules:.3f}",
            f"{d.dual_joules:.4f}")  # fmt: skip
