"""Lay a :class:`~crossrank.evaluation.report.model.Report` out as document blocks.

Every comparison table shows means with their bootstrap interval and the paired p-value
against the baseline (Holm-adjusted over the table's systems), marked † below ``alpha``.
"""

from __future__ import annotations

from crossrank.evaluation.report.layout_perf import efficiency_blocks, tradeoff_blocks
from crossrank.evaluation.report.model import (
    AccuracyTable,
    CalibrationSection,
    Report,
    RobustnessSection,
    StatsSettings,
)
from crossrank.evaluation.report.render import (
    Block,
    Bullets,
    Code,
    Heading,
    Image,
    Paragraph,
    Table,
)
from crossrank.evaluation.report.text import TEST_NAMES, ci_cell, p_cell
from crossrank.evaluation.robustness import RobustnessResult

__all__ = ["multi_metric_table", "report_blocks"]


def report_blocks(report: Report) -> list[Block]:
    """The whole report, section by section."""
    blocks: list[Block] = [
        Heading(1, report.title),
        Paragraph(
            f"Collection `{report.data}`, split `{report.split}` ({report.n_queries} judged "
            f"queries). Generated {report.created} by:"
        ),
        Code(report.command),
        Heading(2, "Settings"),
        Table(("setting", "value"), tuple((k, v) for k, v in report.settings)),
        Paragraph(_stats_legend(report.stats, report.accuracy.tables[0].baseline)),
    ]
    blocks += _accuracy_blocks(report)
    blocks += _calibration_blocks(report.calibration, report.split)
    blocks += _robustness_blocks(report.robustness)
    blocks += efficiency_blocks(report.efficiency, report.stats)
    blocks += tradeoff_blocks(report.tradeoff, report.stats)
    referenced = {b.file for b in blocks if isinstance(b, Image)}
    extra = [f for f in report.figures if f.name not in referenced]
    if extra:
        blocks.append(Heading(2, "Figures"))
        blocks += [Image(f.name, f.caption) for f in extra]
    if report.notes:
        blocks.append(Heading(2, "Notes"))
        blocks.append(Bullets(report.notes))
    return blocks


def _stats_legend(stats: StatsSettings, baseline: str) -> str:
    return (
        f"Accuracy cells read `mean [low, high]`: the {stats.confidence:.0%} percentile "
        f"bootstrap interval over queries ({stats.n_samples} resamples, seed {stats.seed}). "
        f"p: two-sided {TEST_NAMES.get(stats.test, stats.test)} against `{baseline}`, paired "
        f"by query and Holm-adjusted over the systems of the same table; † marks p < "
        f"{stats.alpha:g}."
    )


def _accuracy_blocks(report: Report) -> list[Block]:
    section = report.accuracy
    blocks: list[Block] = [
        Heading(2, "Accuracy"),
        Table(("system", "what"), tuple((s.name, s.description) for s in section.systems)),
    ]
    blocks.append(multi_metric_table(section.tables, report.stats.alpha))
    return blocks


def multi_metric_table(tables: tuple[AccuracyTable, ...], alpha: float) -> Table:
    """One row per system, a (mean [CI], p) column pair per metric table."""
    header = ["system"]
    for table in tables:
        header += [f"{table.metric} [CI]", "p"]
    rows = []
    for row in tables[0].rows:
        cells = [row.system]
        for table in tables:
            r = table.row(row.system)
            cells += [ci_cell(r), p_cell(r.p_adjusted, alpha)]
        rows.append(tuple(cells))
    return Table(tuple(header), tuple(rows))


def _calibration_blocks(section: CalibrationSection | None, split: str) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Calibration")]
    if section is None:
        return [*blocks, Paragraph("Not computed: no binary-head re-ranker among the systems.")]
    fit = (
        f"Temperature and Platt scaling were fitted on split `{section.fit_split}` "
        f"({section.fit_queries} queries, {section.fit_pairs} candidate pairs), never on "
        f"`{split}` itself, then applied to the `{split}` scores."
        if section.fit_split is not None
        else "No calibrator was fitted (`--fit-split none`)."
    )
    blocks += [
        Paragraph(
            f"Binary relevance of the `{section.system}` candidates of split `{split}`: "
            f"{section.n_pairs} (query, document) pairs, {section.n_positive} relevant "
            f"(qrels grade > 0; unjudged counts as non-relevant). Probabilities are the "
            f"sigmoid of the re-ranker's logit. ECE uses {section.n_bins} equal-width bins. " + fit
        ),
        Table(
            ("probabilities", "parameters", "Brier", "ECE", "log-loss"),
            tuple(
                (r.variant, r.parameters, f"{r.brier:.4f}", f"{r.ece:.4f}", f"{r.log_loss:.4f}")
                for r in section.rows
            ),
        ),
    ]
    captions = [f"Reliability diagram: {r.variant}" for r in section.rows]
    blocks += [Image(f, c) for f, c in zip(section.figures, captions, strict=False)]
    return blocks


def _robustness_blocks(section: RobustnessSection | None) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Robustness")]
    if section is None:
        return [*blocks, Paragraph("Not computed (no re-ranker, or `--perturbations none`).")]
    metric = section.rows[0].metric if section.rows else "metric"
    header = ("perturbation", "target", f"{metric} before", "after", "delta", "flip rate",
              "changed", "queries")  # fmt: skip
    blocks += [
        Paragraph(
            f"`{section.system}` re-ranks each judged query's top {section.top_k} first-stage "
            f"candidates with original and perturbed texts (strength {section.strength:g}, "
            f"seed {section.seed}). Flip rate: share of document pairs of the original top 10 "
            "whose order inverts; changed: share of target texts the perturbation altered."
        ),
        Table(header, tuple(_robustness_cells(r) for r in section.rows)),
    ]
    return blocks


def _robustness_cells(r: RobustnessResult) -> tuple[str, ...]:
    return (r.perturbation, r.target, f"{r.before:.4f}", f"{r.after:.4f}", f"{r.delta:+.4f}",
            f"{r.flip_rate:.3f}", f"{r.changed_fraction:.2f}", str(r.n_queries))  # fmt: skip
