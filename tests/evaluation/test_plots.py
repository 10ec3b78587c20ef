"""Reliability diagram PNGs: valid, non-trivial, written atomically."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from crossrank.errors import BackendUnavailableError, ConfigError
from crossrank.evaluation import plots
from crossrank.evaluation.calibration import ReliabilityBins, reliability_bins

pytest.importorskip("matplotlib", reason="plotting needs matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bins(strategy: str = "width") -> ReliabilityBins:
    rng = np.random.default_rng(0)
    probs = rng.random(500)
    labels = (rng.random(500) < probs**2).astype(np.int64)  # over-confident predictions
    return reliability_bins(probs, labels, n_bins=10, strategy=strategy)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["width", "mass"])
def test_writes_a_valid_png(tmp_path: Path, strategy: str) -> None:
    target = tmp_path / "figures" / "reliability.png"
    assert plots.save_reliability_diagram(bins(strategy), target, title="dev") == target
    data = target.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 300 and height >= 300
    assert len(data) > 10_000  # a drawn figure, not an empty canvas
    assert [p.name for p in target.parent.iterdir()] == ["reliability.png"]  # no temp file


def test_empty_bins_are_skipped(tmp_path: Path) -> None:
    sparse = reliability_bins(np.array([0.05, 0.95]), np.array([0, 1]), n_bins=15)
    target = tmp_path / "sparse.png"
    plots.save_reliability_diagram(sparse, target)
    assert target.read_bytes()[:8] == PNG_MAGIC


def test_failed_save_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "reliability.png"
    target.write_bytes(b"old")

    def broken_savefig(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots.Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.save_reliability_diagram(bins(), target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["reliability.png"]


def test_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"\.png"):
        plots.save_reliability_diagram(bins(), tmp_path / "figure.svg")
    with pytest.raises(ConfigError, match="ReliabilityBins"):
        plots.save_reliability_diagram({"edges": []}, tmp_path / "x.png")  # type: ignore[arg-type]
    monkeypatch.setattr(plots, "Figure", None)
    with pytest.raises(BackendUnavailableError, match="matplotlib"):
        plots.save_reliability_diagram(bins(), tmp_path / "x.png")
