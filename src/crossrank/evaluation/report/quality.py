"""Calibration and robustness sections of the re-ranker.

Calibration labels come from the report split's qrels over the re-ranked candidates; the
temperature and Platt calibrators are fitted on another split (``--fit-split``, BM25
top-k candidates of a seeded sample of its judged queries), never on the report split.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import special

from crossrank.data.types import Qrels, Run
from crossrank.evaluation.calibration import (
    Calibrator,
    PlattScaling,
    TemperatureScaling,
    brier_score,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    load_calibrator,
    log_loss,
    pairs_from_run,
    reliability_bins,
)
from crossrank.evaluation.report.config import ReportConfig
from crossrank.evaluation.report.figures import reliability_png
from crossrank.evaluation.report.model import (
    CalibrationRow,
    CalibrationSection,
    FigureFile,
    RobustnessSection,
)
from crossrank.evaluation.robustness import run_robustness
from crossrank.inference import CrossEncoder

__all__ = ["N_BINS", "FitPairs", "calibration_section", "robustness_section"]

logger = logging.getLogger(__name__)
N_BINS = 15


@dataclass(frozen=True, slots=True, eq=False)
class FitPairs:
    """Logits and binary labels of the fit split's candidate pairs."""

    split: str
    n_queries: int
    logits: np.ndarray
    labels: np.ndarray


def is_binary(model: CrossEncoder) -> bool:
    """Whether the model's ranking head is binary (its sigmoid claims a probability)."""
    return model.heads.head(model.heads.primary).kind == "binary"


def calibration_section(
    model: CrossEncoder, name: str, scores: Run, qrels: Qrels, fit: FitPairs | None
) -> tuple[CalibrationSection, list[FigureFile]]:
    """Brier, ECE and log-loss of raw and fitted probabilities; reliability diagrams."""
    logits, labels = pairs_from_run(scores, qrels)
    variants: list[tuple[str, str, np.ndarray]] = [
        ("raw sigmoid", "-", special.expit(logits)),
    ]
    if fit is not None:
        for label, calibrator in _fitted(fit):
            variants.append((label, _parameters(calibrator), calibrator.apply(logits)))
    shipped = load_calibrator(model.model.source)
    if shipped is not None:
        variants.append(("model's calibration.json", _parameters(shipped), shipped.apply(logits)))
    rows = tuple(
        CalibrationRow(
            variant=label,
            parameters=params,
            brier=brier_score(probs, labels),
            ece=expected_calibration_error(probs, labels, N_BINS),
            log_loss=log_loss(probs, labels),
        )
        for label, params, probs in variants
    )
    figures = [
        FigureFile(
            f"reliability-{i}.png",
            f"Reliability diagram: {label}",
            reliability_png(reliability_bins(probs, labels, N_BINS), f"{name}: {label}"),
        )
        for i, (label, _, probs) in enumerate(variants[:2])
    ]
    section = CalibrationSection(
        system=name,
        n_pairs=int(labels.size),
        n_positive=int(labels.sum()),
        n_bins=N_BINS,
        fit_split=None if fit is None else fit.split,
        fit_queries=0 if fit is None else fit.n_queries,
        fit_pairs=0 if fit is None else int(fit.labels.size),
        rows=rows,
        figures=tuple(f.name for f in figures),
    )
    return section, figures


def _fitted(fit: FitPairs) -> list[tuple[str, Calibrator]]:
    where = f"fit on {fit.split}"
    return [
        (f"temperature scaling ({where})", fit_temperature(fit.logits, fit.labels)),
        (f"Platt scaling ({where})", fit_platt(fit.logits, fit.labels)),
    ]


def _parameters(calibrator: Calibrator) -> str:
    if isinstance(calibrator, TemperatureScaling):
        return f"T = {calibrator.temperature:.4g}"
    if isinstance(calibrator, PlattScaling):
        return f"a = {calibrator.a:.4g}, b = {calibrator.b:.4g}"
    return "-"


def robustness_section(
    model: CrossEncoder,
    name: str,
    *,
    first_stage: Run,
    texts: tuple[Mapping[str, str], Mapping[str, str]],
    qrels: Qrels,
    config: ReportConfig,
) -> RobustnessSection:
    """The robustness suite over ``config.perturbations`` at ``config.robustness_top_k``."""
    results = run_robustness(
        model,
        first_stage,
        texts[0],
        texts[1],
        qrels,
        perturbations=list(config.perturbations),
        top_k=config.robustness_top_k,
        seed=config.stats.seed,
        metric=config.primary_metric,
        strength=config.strength,
    )
    return RobustnessSection(
        name, config.robustness_top_k, config.strength, config.stats.seed, tuple(results)
    )
