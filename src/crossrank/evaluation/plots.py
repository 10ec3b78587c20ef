"""Figures of evaluation results, drawn with matplotlib's Agg canvas (no display needed).

Figures are built on a bare ``matplotlib.figure.Figure`` with an Agg canvas, never
through ``pyplot``: that keeps matplotlib's global backend and figure registry untouched,
so plotting is safe in servers and threads. matplotlib is optional; without it,
plotting raises BackendUnavailableError.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> from crossrank.evaluation.calibration import reliability_bins
    >>> bins = reliability_bins(np.array([0.1, 0.4, 0.8, 0.9]), np.array([0, 1, 1, 1]), n_bins=5)
    >>> path = save_reliability_diagram(bins, pathlib.Path(tempfile.mkdtemp()) / "rel.png")
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from crossrank.errors import BackendUnavailableError, ConfigError
from crossrank.evaluation.calibration import ReliabilityBins

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError:  # optional dependency: only plotting needs it
    FigureCanvasAgg = None
    Figure = None

__all__ = ["save_reliability_diagram"]

_DPI = 120


def save_reliability_diagram(
    bins: ReliabilityBins, path: str | Path, title: str = "Reliability diagram"
) -> Path:
    """Write a reliability diagram of ``bins`` as a PNG at ``path``; return the path.

    The top panel shows each non-empty bin's fraction of relevant pairs (bars) against
    the diagonal of perfect calibration, with the gap to the bin's mean predicted
    probability shaded; the bottom panel shows how many pairs fall in each bin.
    The file is written to a temp file in the same folder and renamed, so ``path``
    never holds a partial image.
    """
    if Figure is None or FigureCanvasAgg is None:
        raise BackendUnavailableError("plotting needs matplotlib; pip install matplotlib")
    if not isinstance(bins, ReliabilityBins):
        raise ConfigError(f"bins must be ReliabilityBins, got {type(bins).__name__}")
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ConfigError(f"reliability diagram path must end in .png, got {target}")
    figure = _draw(bins, title)
    _save_png_atomic(figure, target)
    return target


def _draw(bins: ReliabilityBins, title: str) -> Figure:
    figure = Figure(figsize=(5.0, 6.0), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself to the figure
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    left, widths = bins.edges[:-1], np.diff(bins.edges)
    filled = bins.counts > 0
    top.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", label="perfect calibration")
    top.bar(
        left[filled],
        bins.accuracy[filled],
        width=widths[filled],
        align="edge",
        edgecolor="black",
        color="tab:blue",
        label="fraction relevant",
    )
    # The shaded gap runs from the bin's accuracy to its mean predicted probability.
    top.bar(
        left[filled],
        bins.confidence[filled] - bins.accuracy[filled],
        width=widths[filled],
        bottom=bins.accuracy[filled],
        align="edge",
        color="tab:red",
        alpha=0.3,
        hatch="//",
        label="gap to mean prediction",
    )
    top.set(xlim=(0.0, 1.0), ylim=(0.0, 1.0), ylabel="fraction relevant")
    top.set_title(f"{title}\nECE = {bins.ece:.4f} ({bins.strategy} bins, n = {bins.counts.sum()})")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(left, bins.counts, width=widths, align="edge", color="grey", edgecolor="black")
    bottom.set(xlabel="predicted probability of relevance", ylabel="pairs")
    return figure


def _save_png_atomic(figure: Figure, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's fixed 0600 would ignore the umask
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
