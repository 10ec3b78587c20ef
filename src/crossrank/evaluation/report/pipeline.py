"""Run everything a report needs and gather it into a :class:`Report`.

Order of work: load the split; build and time the first stages; score the first stage's
candidates once per re-ranker configuration (max length x backend) and time each depth on
the sampled queries; score the same candidates with the dual encoder; then derive every
section from those scores (plus the calibration fit split and the robustness suite, which
score their own pairs with the default configuration: the first max length and backend).

Example:
    >>> report = build_report(ReportConfig(Path("examples/tiny"), "test",
    ...                       parse_systems(["bm25"])), command="crossrank report ...")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from crossrank.data import load_collection
from crossrank.data.types import Collection, Run
from crossrank.evaluation.calibration import pairs_from_run
from crossrank.evaluation.report.config import RERANK, ReportConfig, SystemSpec
from crossrank.evaluation.report.model import (
    CalibrationSection,
    FigureFile,
    Report,
    RobustnessSection,
    TradeoffSection,
)
from crossrank.evaluation.report.quality import (
    FitPairs,
    calibration_section,
    is_binary,
    robustness_section,
)
from crossrank.evaluation.report.scoring import (
    Candidates,
    DualIndex,
    DualScores,
    ScoredConfig,
    dual_latency,
    dual_scores,
    score_config,
)
from crossrank.evaluation.report.sections import (
    accuracy_section,
    efficiency_section,
    tradeoff_section,
)
from crossrank.evaluation.report.settings import report_settings
from crossrank.evaluation.report.systems import FirstStage, Retrievers
from crossrank.evaluation.tradeoff import rerank_at_depth
from crossrank.inference import CrossEncoder

__all__ = ["build_report", "sample_ids"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class _Split:
    """The report split: texts by id, judged query ids, the latency sample."""

    collection: Collection
    queries: dict[str, str]
    docs: dict[str, str]
    judged: tuple[str, ...]
    sample: tuple[str, ...]

    @property
    def texts(self) -> tuple[dict[str, str], dict[str, str]]:
        return self.queries, self.docs


def sample_ids(ids: Sequence[str], n: int, seed: int) -> tuple[str, ...]:
    """``n`` of ``ids`` drawn without replacement (seeded), kept in their original order.

    >>> sample_ids(["a", "b", "c"], 5, 0)
    ('a', 'b', 'c')
    >>> len(sample_ids([str(i) for i in range(10)], 4, 0))
    4
    """
    if n >= len(ids):
        return tuple(ids)
    picked = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    return tuple(ids[i] for i in np.sort(picked).tolist())


@dataclass(frozen=True, slots=True, eq=False)
class _RerankSections:
    """The sections that exist only with a re-ranker, and their figures."""

    calibration: CalibrationSection | None = None
    robustness: RobustnessSection | None = None
    tradeoff: TradeoffSection | None = None
    figures: tuple[FigureFile, ...] = ()


def build_report(config: ReportConfig, *, command: str, progress: bool = False) -> Report:
    """Compute every section of the report described by ``config``."""
    started = time.perf_counter()
    split = _load_split(config.data, config.split, config.latency_queries, config.stats.seed)
    hardware = _hardware(config.device)
    retrievers = Retrievers(split.collection, config, progress)
    stages = _first_stages(config, retrievers, split)
    first = stages[config.first_stage.name]
    runs = {name: stage.run for name, stage in stages.items()}
    descriptions = {name: stage.description for name, stage in stages.items()}
    scored: list[ScoredConfig] = []
    extra = _RerankSections()
    if config.wants_rerank:
        model, scored = _score_configs(config, first, split)
        runs[RERANK] = rerank_at_depth(first.run, scored[0].scores, config.top_k)
        descriptions[RERANK] = (
            f"`{config.model}` ({scored[0].name}) re-ranks the top {config.top_k} of `{first.name}`"
        )
        extra = _rerank_sections(config, retrievers=retrievers, split=split, first=first,
                                 model=model, scored=scored, baseline_run=runs[config.baseline])  # fmt: skip
    accuracy = accuracy_section(
        _ordered(config, runs), descriptions, split.collection.qrels, config
    )
    efficiency, pareto = efficiency_section(config, stages=stages, first=first, scored=scored,
                                            qrels=split.collection.qrels, hardware=hardware)  # fmt: skip
    elapsed = time.perf_counter() - started
    return Report(
        title=f"crossrank report: {config.data.name} {config.split}",
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command=command,
        data=str(config.data),
        split=config.split,
        n_queries=len(split.judged),
        stats=config.stats,
        settings=report_settings(config),
        accuracy=accuracy,
        calibration=extra.calibration,
        robustness=extra.robustness,
        efficiency=efficiency,
        tradeoff=extra.tradeoff,
        figures=(pareto, *extra.figures),
        notes=(f"Report computed in {elapsed:.0f} s.", *_notes(config, split)),
    )


def _load_split(data: Path, name: str, n_sample: int, seed: int) -> _Split:
    collection = load_collection(data, name)
    queries = collection.query_texts()
    judged = tuple(
        q for q, j in collection.qrels.items() if q in queries and any(g > 0 for g in j.values())
    )
    docs = {doc_id: doc.full_text for doc_id, doc in collection.corpus.items()}
    return _Split(collection, queries, docs, judged, sample_ids(judged, n_sample, seed))


def _first_stages(
    config: ReportConfig, retrievers: Retrievers, split: _Split
) -> dict[str, FirstStage]:
    """Every first-stage system, the re-ranker's first stage and the baseline, built once."""
    specs: dict[str, SystemSpec] = {}
    for spec in (*config.systems, config.first_stage):
        if spec.kind != RERANK:
            specs.setdefault(spec.name, spec)
    judged_queries = {q: split.queries[q] for q in split.judged}
    return {
        name: retrievers.first_stage(spec, judged_queries, split.sample)
        for name, spec in specs.items()
    }


def _ordered(config: ReportConfig, runs: dict[str, Run]) -> dict[str, Run]:
    """The requested systems in order, the baseline first when it was not requested."""
    names = [s.name for s in config.systems]
    if config.baseline not in names:
        names.insert(0, config.baseline)
    return {name: runs[name] for name in names}


def _score_configs(
    config: ReportConfig, first: FirstStage, split: _Split
) -> tuple[CrossEncoder, list[ScoredConfig]]:
    """Score every (max length, backend); return the default (first) configuration's model."""
    cands = Candidates.from_run(first.run, split.judged, config.top_k)
    combos = [(length, backend) for length in config.max_lengths for backend in config.backends]
    default = _load_model(config, *combos[0])

    def score(model: CrossEncoder) -> ScoredConfig:
        depths = config.depths_with_top_k
        return score_config(model, cands, texts=split.texts, sample=split.sample, depths=depths,
                            power=config.power)  # fmt: skip

    # One model at a time beyond the default, so each peak-RSS figure holds one model.
    scored = [score(default), *(score(_load_model(config, *combo)) for combo in combos[1:])]
    return default, scored


def _load_model(config: ReportConfig, max_length: int, backend: str) -> CrossEncoder:
    return CrossEncoder.from_pretrained(
        config.model or "",
        backend=backend,
        device=config.device,
        max_length=max_length,
        threads=config.threads,
    )


def _rerank_sections(
    config: ReportConfig,
    *,
    retrievers: Retrievers,
    split: _Split,
    first: FirstStage,
    model: CrossEncoder,
    scored: list[ScoredConfig],
    baseline_run: Run,
) -> _RerankSections:
    """Calibration (binary heads only), robustness and cross- vs dual-encoder."""
    qrels, cfg = split.collection.qrels, scored[0]
    calibration, figures = None, []
    if is_binary(model):
        fit = _fit_pairs(config, retrievers, model) if config.fit_split else None
        calibration, figures = calibration_section(model, cfg.name, cfg.scores, qrels, fit)
    robustness = None
    if config.perturbations:
        logger.info("robustness: %d perturbations", len(config.perturbations))
        robustness = robustness_section(model, cfg.name, first_stage=first.run,
                                        texts=split.texts, qrels=qrels, config=config)  # fmt: skip
    index = DualIndex.of(retrievers.dense())
    cands = Candidates.from_run(first.run, split.judged, config.top_k)
    dual = DualScores(
        f"dual-encoder `{config.dense_model}`",
        dual_scores(index, cands, split.queries),
        dual_latency(index, cands, split.queries, split.sample, config.depths_with_top_k),
    )
    tradeoff, depth_figure = tradeoff_section(config, first, cross=cfg, dual=dual,
                                              texts=split.texts, qrels=qrels,
                                              baseline_run=baseline_run)  # fmt: skip
    return _RerankSections(calibration, robustness, tradeoff, (*figures, depth_figure))


def _fit_pairs(config: ReportConfig, retrievers: Retrievers, model: CrossEncoder) -> FitPairs:
    """Score BM25 top-k candidates of a seeded sample of the fit split's judged queries."""
    fit_split = config.fit_split or ""
    fit = _load_split(config.data, fit_split, config.fit_queries, config.stats.seed)
    queries = {q: fit.queries[q] for q in fit.sample}
    run = retrievers.bm25().retrieve(queries, config.top_k)
    cands = Candidates.from_run(run, fit.sample, config.top_k)
    pair_q = [fit.queries[q] for q in cands.pair_query_ids()]
    started = time.perf_counter()
    scores = model.score(pair_q, [fit.docs[d] for d in cands.doc_ids])
    logger.info("calibration fit on %s: %d pairs scored in %.1fs", fit_split, len(pair_q),
                time.perf_counter() - started)  # fmt: skip
    logits, labels = pairs_from_run(cands.as_run(np.asarray(scores, dtype=np.float64)),
                                    fit.collection.qrels)  # fmt: skip
    return FitPairs(fit_split, len(fit.sample), logits, labels)


def _hardware(device: str | None) -> tuple[str, str]:
    """A one-line description of the machine and the scoring device."""
    chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cpu = platform.processor() or platform.machine()
    model_name = _cpu_model()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    text = (
        f"{model_name or cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load average {load} at the start"
    )
    if chosen.startswith("cuda"):
        text += f", GPU {torch.cuda.get_device_name(torch.device(chosen))}"
    return text, chosen


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return ""
    return ""


def _notes(config: ReportConfig, split: _Split) -> list[str]:
    notes = [
        f"Latency was sampled on {len(split.sample)} of {len(split.judged)} judged queries "
        f"(seed {config.stats.seed}); accuracy uses all judged queries.",
    ]
    if config.wants_rerank and config.fit_split:
        notes.append(
            f"Calibrators were fitted on split `{config.fit_split}` ({config.fit_queries} "
            f"sampled queries, BM25 top {config.top_k}); the `{config.split}` qrels are used "
            "only to measure calibration."
        )
    return notes
