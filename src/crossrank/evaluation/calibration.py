"""Probability calibration of relevance scores: Brier score, ECE and post-hoc scaling.

Calibration is measured on binary relevance: a label is 1 when the qrels grade is > 0
and a probability is the predicted P(relevant) of one (query, document) pair. This is
binary calibration of the positive class (not the top-label "confidence" of multi-class
ECE), which is what a re-ranker's sigmoid output claims to be.

Binary cross-encoders emit logits. :class:`TemperatureScaling` (``sigmoid(z / T)``) and
:class:`PlattScaling` (``sigmoid(a z + b)``) map them to probabilities; both are fitted
by minimising log-loss on a dev split, saved beside the model as ``calibration.json``
and applied at inference. Temperature scaling (and Platt with ``a > 0``) is strictly
increasing, so it never changes a ranking: it only makes the probabilities honest.

Example:
    >>> import numpy as np
    >>> probs, labels = np.array([0.9, 0.7, 0.6, 0.2, 0.1]), np.array([1, 1, 0, 0, 1])
    >>> round(brier_score(probs, labels), 3)
    0.262
    >>> round(expected_calibration_error(probs, labels, n_bins=2), 3)
    0.18
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from scipy import optimize, special

from crossrank.data.types import Qrels, Run
from crossrank.errors import ConfigError, MissingDataError
from crossrank.evaluation.tables import write_json

__all__ = [
    "CALIBRATION_FILE",
    "CALIBRATION_SCHEMA_VERSION",
    "BinStrategy",
    "Calibrator",
    "PlattScaling",
    "ReliabilityBins",
    "TemperatureScaling",
    "brier_score",
    "expected_calibration_error",
    "fit_platt",
    "fit_temperature",
    "load_calibrator",
    "log_loss",
    "pairs_from_run",
    "reliability_bins",
    "save_calibrator",
]

CALIBRATION_FILE = "calibration.json"
CALIBRATION_SCHEMA_VERSION = 1
BinStrategy = Literal["width", "mass"]
# log T is searched in [-7, 7], i.e. T in [~0.001, ~1100]; a fit at either end warns.
_LOG_T_BOUND = 7.0


@dataclass(frozen=True, slots=True, eq=False)
class ReliabilityBins:
    """Per-bin statistics behind ECE and the reliability diagram.

    ``edges`` has ``len(counts) + 1`` entries; bin i covers ``[edges[i], edges[i+1])``
    (the last bin includes 1.0). ``confidence`` is the mean predicted probability and
    ``accuracy`` the fraction of relevant pairs in each bin; both are nan for an empty bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray
    strategy: BinStrategy

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of (count / n) * |accuracy - confidence|."""
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(self.counts[filled] * gaps) / np.sum(self.counts))


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared difference between predicted probability and binary label.

    >>> brier_score(np.array([1.0, 0.0]), np.array([1, 0]))
    0.0
    """
    p, y = _check_probs_labels(probs, labels)
    return float(np.mean((p - y) ** 2))


def reliability_bins(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, strategy: BinStrategy = "width"
) -> ReliabilityBins:
    """Bin predictions for ECE and the reliability diagram.

    ``"width"``: ``n_bins`` equal-width bins over [0, 1] (some may be empty).
    ``"mass"``: the predictions sorted by probability are cut into ``min(n_bins, n)``
    groups of equal size (sizes differ by at most one, larger groups first); an edge sits
    halfway between neighbouring groups, so tied probabilities may straddle two bins.

    >>> reliability_bins(np.array([0.1, 0.9]), np.array([0, 1]), n_bins=2).counts.tolist()
    [1, 1]
    """
    p, y = _check_probs_labels(probs, labels)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError(f"n_bins must be a positive int, got {n_bins!r}")
    if strategy == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        # Rounding p * n_bins before the floor puts a probability written on an edge (0.6
        # with 5 bins; the float 0.6 is a hair below 3/5) in the upper bin, as by hand.
        index = np.minimum(np.floor(np.round(p * n_bins, 9)), n_bins - 1).astype(np.int64)
    elif strategy == "mass":
        edges, index = _equal_mass(p, min(n_bins, p.size))
    else:
        raise ConfigError(f"strategy must be 'width' or 'mass', got {strategy!r}")
    size = edges.size - 1
    counts = np.bincount(index, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins become nan on purpose
        confidence = np.bincount(index, weights=p, minlength=size) / counts
        accuracy = np.bincount(index, weights=y, minlength=size) / counts
    return ReliabilityBins(edges, confidence, accuracy, counts, strategy)


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, strategy: BinStrategy = "width"
) -> float:
    """ECE: count-weighted mean gap between accuracy and confidence over the bins.

    >>> ece = expected_calibration_error(np.array([0.2, 0.2, 0.8]), np.array([0, 0, 1]), n_bins=5)
    >>> round(ece, 6)  # bin [0.2, 0.4): 2/3 * |0 - 0.2|; bin [0.8, 1]: 1/3 * |1 - 0.8|
    0.2
    """
    return reliability_bins(probs, labels, n_bins, strategy).ece


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy; probabilities are clipped to [1e-15, 1 - 1e-15].

    >>> round(log_loss(np.array([0.5, 0.5]), np.array([0, 1])), 4)
    0.6931
    """
    p, y = _check_probs_labels(probs, labels)
    p = np.clip(p, 1e-15, 1.0 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


@dataclass(frozen=True, slots=True)
class TemperatureScaling:
    """``sigmoid(logit / temperature)``; strictly increasing, so rankings are unchanged.

    >>> TemperatureScaling(2.0).apply(np.array([0.0, 2.0])).round(4).tolist()
    [0.5, 0.7311]
    """

    temperature: float
    schema_version: int = CALIBRATION_SCHEMA_VERSION
    kind: ClassVar[str] = "temperature"

    def __post_init__(self) -> None:
        if not _is_real(self.temperature) or not self.temperature > 0:
            raise ConfigError(f"temperature must be a finite number > 0, got {self.temperature!r}")

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw logits."""
        return special.expit(_check_logits(logits) / self.temperature)


@dataclass(frozen=True, slots=True)
class PlattScaling:
    """``sigmoid(a * logit + b)``; keeps rankings when ``a > 0`` (a fit gives a <= 0 only
    for scores that are uninformative or anti-correlated with relevance).

    >>> PlattScaling(1.0, -1.0).apply(np.array([1.0])).tolist()
    [0.5]
    """

    a: float
    b: float
    schema_version: int = CALIBRATION_SCHEMA_VERSION
    kind: ClassVar[str] = "platt"

    def __post_init__(self) -> None:
        for name, value in (("a", self.a), ("b", self.b)):
            if not _is_real(value):
                raise ConfigError(f"Platt parameter {name} must be a finite number, got {value!r}")

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw logits."""
        return special.expit(self.a * _check_logits(logits) + self.b)


Calibrator = TemperatureScaling | PlattScaling


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> TemperatureScaling:
    """Fit T > 0 minimising log-loss of ``sigmoid(logits / T)`` (bounded search on log T).

    >>> z = np.array([-4.0, -2.0, 2.0, 4.0, -3.0, 3.0]); y = np.array([0, 1, 0, 1, 0, 1])
    >>> fit_temperature(z, y).temperature > 1.0  # over-confident logits are softened
    True
    """
    z, y = _check_fit_inputs(logits, labels)
    # The loss is convex in 1 / T, hence unimodal in log T: bounded Brent finds the minimum.
    found = optimize.minimize_scalar(
        lambda log_t: _logistic_nll(z / math.exp(log_t), y),
        bounds=(-_LOG_T_BOUND, _LOG_T_BOUND),
        method="bounded",
        options={"xatol": 1e-7},
    )
    # Brent stops short of a bound where the loss flattens out, hence the 0.5 margin.
    if abs(found.x) > _LOG_T_BOUND - 0.5:
        warnings.warn(
            f"fit_temperature: the optimum T={math.exp(found.x):.4g} is at the search bound: "
            "the dev labels are perfectly separated by the logits, or the logits carry no "
            "signal (or an inverted one)",
            UserWarning,
            stacklevel=2,
        )
    return TemperatureScaling(float(math.exp(found.x)))


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> PlattScaling:
    """Fit ``a, b`` minimising log-loss of ``sigmoid(a * logits + b)`` (L-BFGS, exact gradient).

    >>> rng = np.random.default_rng(0); z = rng.normal(size=2000)
    >>> y = (rng.random(2000) < 1 / (1 + np.exp(-(2 * z - 1)))).astype(int)
    >>> p = fit_platt(z, y); (round(p.a), round(p.b))
    (2, -1)
    """
    z, y = _check_fit_inputs(logits, labels)

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        margin = a * z + b
        residual = special.expit(margin) - y  # d(loss) / d(margin), per example
        grad = np.array([np.mean(residual * z), np.mean(residual)])
        return _logistic_nll(margin, y), grad

    found = optimize.minimize(loss_and_grad, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    if not found.success:
        raise ConfigError(f"fit_platt: optimisation did not converge ({found.message})")
    if found.x[0] <= 0.0:
        warnings.warn(
            f"fit_platt: slope a={found.x[0]:.4g} <= 0, so calibrated probabilities do not "
            "increase with the score (the dev scores are uninformative or inverted)",
            UserWarning,
            stacklevel=2,
        )
    return PlattScaling(float(found.x[0]), float(found.x[1]))


def save_calibrator(calibrator: Calibrator, model_dir: str | Path) -> Path:
    """Write ``calibration.json`` into ``model_dir`` atomically; return its path."""
    if not isinstance(calibrator, TemperatureScaling | PlattScaling):
        raise ConfigError(f"not a calibrator: {calibrator!r}")
    payload: dict[str, object] = {
        "schema_version": calibrator.schema_version,
        "kind": calibrator.kind,
    }
    if isinstance(calibrator, TemperatureScaling):
        payload["temperature"] = calibrator.temperature
    else:
        payload.update(a=calibrator.a, b=calibrator.b)
    path = Path(model_dir) / CALIBRATION_FILE
    write_json(path, payload)
    return path


def load_calibrator(model_dir: str | Path) -> Calibrator | None:
    """Read ``model_dir/calibration.json``; None when the model has no calibrator."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise MissingDataError(f"model directory {folder} does not exist")
    path = folder / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(payload, Mapping):
        raise ConfigError(f"{path}: expected a JSON object, got {type(payload).__name__}")
    return _calibrator_from(payload, path)


def pairs_from_run(run: Run, qrels: Qrels) -> tuple[np.ndarray, np.ndarray]:
    """Flatten a run into aligned (score, binary label) arrays for calibration.

    Only queries present in ``qrels`` are used. Within them, a document without a
    judgment counts as non-relevant (label 0), the usual convention of pooled
    collections; a label is 1 when the grade is > 0. Order: run order of queries, then
    of documents.

    >>> pairs_from_run({"q1": {"d1": 2.0, "d2": -1.0}, "q9": {"d3": 0.5}}, {"q1": {"d1": 1}})
    (array([ 2., -1.]), array([1, 0]))
    """
    scores: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for qid, docs in run.items():
        judged = qrels.get(qid)
        if judged is None or not docs:
            continue
        scores.append(np.fromiter(docs.values(), dtype=np.float64, count=len(docs)))
        labels.append(
            np.fromiter((judged.get(d, 0) > 0 for d in docs), dtype=np.int64, count=len(docs))
        )
    if not scores:
        raise ConfigError("pairs_from_run: no run query is judged in the qrels")
    return np.concatenate(scores), np.concatenate(labels)


def _calibrator_from(payload: Mapping[str, object], path: Path) -> Calibrator:
    version = payload.get("schema_version")
    if version != CALIBRATION_SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: unsupported schema_version {version!r} "
            f"(this crossrank reads {CALIBRATION_SCHEMA_VERSION})"
        )
    kind = payload.get("kind")
    fields = {"temperature": ("temperature",), "platt": ("a", "b")}.get(str(kind))
    if not isinstance(kind, str) or fields is None:
        raise ConfigError(
            f"{path}: unknown calibrator kind {kind!r}; expected 'temperature' or 'platt'"
        )
    extra = set(payload) - {"schema_version", "kind", *fields}
    missing = [f for f in fields if f not in payload]
    if extra or missing:
        raise ConfigError(
            f"{path}: a {kind} calibrator needs exactly the fields {list(fields)} "
            f"(missing {missing}, unexpected {sorted(extra)})"
        )
    try:
        if kind == "temperature":
            return TemperatureScaling(payload["temperature"])  # type: ignore[arg-type]
        return PlattScaling(payload["a"], payload["b"])  # type: ignore[arg-type]
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


def _logistic_nll(margin: np.ndarray, y: np.ndarray) -> float:
    # -log sigmoid(m) = softplus(-m) and -log(1 - sigmoid(m)) = softplus(m); logaddexp
    # evaluates softplus without overflow for large |m|.
    return float(np.mean(np.logaddexp(0.0, margin) - y * margin))


def _check_probs_labels(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ConfigError(f"probabilities must be a non-empty 1-D array, got shape {p.shape}")
    if not (np.isfinite(p).all() and (p >= 0.0).all() and (p <= 1.0).all()):
        bad = p[~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))][0]
        raise ConfigError(f"probabilities must lie in [0, 1], got {bad!r}")
    return p, _check_labels(labels, p.size)


def _check_fit_inputs(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = _check_logits(logits)
    if z.size == 0:
        raise ConfigError("cannot fit a calibrator on zero examples")
    y = _check_labels(labels, z.size)
    if y.min() == y.max():
        raise ConfigError(
            f"cannot fit a calibrator: all {y.size} labels are {int(y[0])}; the dev split "
            "needs both relevant and non-relevant pairs"
        )
    return z, y


def _check_logits(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 1:
        raise ConfigError(f"logits must be a 1-D array, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ConfigError(f"logits must be finite, got {z[~np.isfinite(z)][0]!r}")
    return z


def _check_labels(labels: np.ndarray, size: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (size,):
        raise ConfigError(f"labels must have shape ({size},) like the scores, got {y.shape}")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise ConfigError("labels must be binary 0/1 (relevance grade > 0)")
    return y.astype(np.float64)


def _equal_mass(p: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, n_bins)
    index = np.empty(p.size, dtype=np.int64)
    for i, group in enumerate(groups):
        index[group] = i
    inner = [(p[lo[-1]] + p[hi[0]]) / 2.0 for lo, hi in itertools.pairwise(groups)]
    return np.array([0.0, *inner, 1.0]), index


def _is_real(value: object) -> bool:
    is_number = isinstance(value, int | float | np.integer | np.floating)
    return is_number and not isinstance(value, bool | np.bool_) and math.isfinite(value)  # type: ignore[arg-type]
