"""PNG figures of the report as bytes (the writer puts them next to report.md/html).

Drawn on bare Agg figures, never ``pyplot``, like :mod:`crossrank.evaluation.plots`.

Example:
    >>> png = depth_png([10, 20], [0.70, 0.72], [0.65, 0.66], [50.0, 95.0], [3.0, 3.1],
    ...                 first_stage=0.6, metric="nDCG@10")
    >>> png[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from pathlib import Path

from crossrank.errors import BackendUnavailableError, ConfigError
from crossrank.evaluation.calibration import ReliabilityBins
from crossrank.evaluation.plots import save_reliability_diagram

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError:  # optional dependency: only plotting needs it
    FigureCanvasAgg = None
    Figure = None

__all__ = ["depth_png", "reliability_png"]

_DPI = 120


def depth_png(
    depths: Sequence[int],
    cross: Sequence[float],
    dual: Sequence[float],
    cross_ms: Sequence[float],
    dual_ms: Sequence[float],
    *,
    first_stage: float,
    metric: str,
) -> bytes:
    """Metric (left) and mean re-ranking latency (right) against candidate depth."""
    if Figure is None or FigureCanvasAgg is None:
        raise BackendUnavailableError("plotting needs matplotlib; pip install matplotlib")
    n = len(depths)
    if n == 0 or any(len(s) != n for s in (cross, dual, cross_ms, dual_ms)):
        raise ConfigError("depth_png needs one value per depth in every series")
    figure = Figure(figsize=(10.0, 4.0), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    left.plot(depths, cross, marker="o", label="cross-encoder")
    left.plot(depths, dual, marker="s", label="dual-encoder")
    left.axhline(first_stage, color="grey", linestyle="--", label="first stage alone")
    left.set(xlabel="re-ranking depth k", ylabel=metric, title=f"{metric} by depth")
    left.legend(fontsize="small")
    right.plot(depths, cross_ms, marker="o", label="cross-encoder")
    right.plot(depths, dual_ms, marker="s", label="dual-encoder")
    right.set(xlabel="re-ranking depth k", ylabel="mean ms per query", title="Re-ranking latency")
    right.set_yscale("log")
    right.legend(fontsize="small")
    for axes in (left, right):
        axes.grid(True, alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def reliability_png(bins: ReliabilityBins, title: str) -> bytes:
    """The project's reliability diagram (:func:`save_reliability_diagram`) as PNG bytes."""
    with tempfile.TemporaryDirectory(prefix="crossrank-fig-") as tmp:
        return save_reliability_diagram(bins, Path(tmp) / "reliability.png", title).read_bytes()
