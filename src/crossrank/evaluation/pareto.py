"""Accuracy-versus-latency Pareto frontier of system configurations, and its plot.

A configuration is a point (latency, accuracy): lower latency and higher accuracy are
better. A point is **dominated** when another point is at least as good on both axes and
strictly better on one; the frontier is the set of points nobody dominates. Identical
points do not dominate each other, so both stay on the frontier.

The plot is drawn on a bare Agg ``Figure`` (never ``pyplot``: no global state) and written
atomically: a temp file beside the target, then a rename.

Example:
    >>> pts = [ParetoPoint("bm25", 2.0, 0.66), ParetoPoint("ce@10", 50.0, 0.70),
    ...        ParetoPoint("slow", 90.0, 0.65)]
    >>> [pts[i].label for i in pareto_front(pts)]
    ['bm25', 'ce@10']
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossrank.data.atomic import atomic_write_bytes
from crossrank.errors import BackendUnavailableError, ConfigError

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError:  # optional dependency: only plotting needs it
    FigureCanvasAgg = None
    Figure = None

__all__ = ["ParetoPoint", "pareto_front", "pareto_png", "save_pareto_plot"]

_DPI = 120


@dataclass(frozen=True, slots=True)
class ParetoPoint:
    """One configuration: ``latency`` (lower is better), ``accuracy`` (higher is better).

    ``group`` colours the point in the plot (e.g. ``"first stage"``, ``"onnx L=256"``).
    """

    label: str
    latency: float
    accuracy: float
    group: str = ""

    def __post_init__(self) -> None:
        for name in ("latency", "accuracy"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"point {self.label!r}: {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"point {self.label!r}: {name} must be finite, got {value!r}")
        if self.latency < 0:
            raise ConfigError(f"point {self.label!r}: latency must be >= 0, got {self.latency!r}")


def pareto_front(points: Sequence[ParetoPoint]) -> tuple[int, ...]:
    """Indices of the non-dominated points, by increasing latency (ties: input order).

    >>> pareto_front([ParetoPoint("a", 1.0, 0.5), ParetoPoint("b", 1.0, 0.5)])
    (0, 1)
    """
    if not points:
        return ()
    lat = np.array([p.latency for p in points], dtype=np.float64)
    acc = np.array([p.accuracy for p in points], dtype=np.float64)
    # dominated[i, j]: point j dominates point i (n x n is fine for tens of configurations).
    no_worse = (lat[None, :] <= lat[:, None]) & (acc[None, :] >= acc[:, None])
    better = (lat[None, :] < lat[:, None]) | (acc[None, :] > acc[:, None])
    dominated = (no_worse & better).any(axis=1)
    keep = np.flatnonzero(~dominated)
    return tuple(int(i) for i in keep[np.argsort(lat[keep], kind="stable")])


def pareto_png(
    points: Sequence[ParetoPoint],
    *,
    x_label: str = "latency per query (ms)",
    y_label: str = "accuracy",
    title: str = "Accuracy vs latency",
    log_x: bool = True,
    label_groups: Sequence[str] = (),
) -> bytes:
    """PNG bytes of a scatter of ``points`` with the Pareto frontier drawn as a step line.

    Frontier points and the points of ``label_groups`` are labelled; the others are only
    coloured by group.

    ``log_x`` uses a logarithmic latency axis (latencies span orders of magnitude); it
    falls back to linear when a latency is 0.
    """
    if Figure is None or FigureCanvasAgg is None:
        raise BackendUnavailableError("plotting needs matplotlib; pip install matplotlib")
    if not points:
        raise ConfigError("a Pareto plot needs at least one point")
    figure = Figure(figsize=(7.5, 5.0), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself to the figure
    axes = figure.subplots()
    front = pareto_front(points)
    groups = list(dict.fromkeys(p.group for p in points))
    for group in groups:
        members = [p for p in points if p.group == group]
        axes.scatter(
            [p.latency for p in members], [p.accuracy for p in members], label=group or None, s=30
        )
    # Only frontier points are labelled: with tens of configurations, labelling every point
    # makes the plot unreadable (the report's table lists them all).
    labelled = sorted({*front, *(i for i, p in enumerate(points) if p.group in label_groups)})
    for i in labelled:
        p = points[i]
        axes.annotate(p.label, (p.latency, p.accuracy), fontsize=7, xytext=(4, 3),
                      textcoords="offset points")  # fmt: skip
    frontier = [points[i] for i in front]
    axes.step([p.latency for p in frontier], [p.accuracy for p in frontier], where="post",
              color="black", linestyle="--", linewidth=1, label="Pareto frontier")  # fmt: skip
    if log_x and min(p.latency for p in points) > 0:
        axes.set_xscale("log")
    axes.set(xlabel=x_label, ylabel=y_label, title=title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def save_pareto_plot(
    points: Sequence[ParetoPoint],
    path: str | Path,
    *,
    x_label: str = "latency per query (ms)",
    y_label: str = "accuracy",
    title: str = "Accuracy vs latency",
) -> Path:
    """Write :func:`pareto_png` to ``path`` atomically (the name must end in .png).

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "pareto.png"
    >>> save_pareto_plot([ParetoPoint("bm25", 2.0, 0.66)], out).read_bytes()[:4]
    b'\\x89PNG'
    """
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ConfigError(f"Pareto plot path must end in .png, got {target}")
    png = pareto_png(points, x_label=x_label, y_label=y_label, title=title)
    with atomic_write_bytes(target) as handle:
        handle.write(png)
    return target
