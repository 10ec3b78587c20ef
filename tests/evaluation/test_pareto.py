"""Pareto frontier (checked against brute force) and its atomic PNG plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossrank.errors import ConfigError
from crossrank.evaluation.pareto import ParetoPoint, pareto_front, pareto_png, save_pareto_plot


def _brute_force(points: list[ParetoPoint]) -> set[int]:
    def dominates(a: ParetoPoint, b: ParetoPoint) -> bool:
        no_worse = a.latency <= b.latency and a.accuracy >= b.accuracy
        return no_worse and (a.latency < b.latency or a.accuracy > b.accuracy)

    return {i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)}


def test_front_of_a_known_set() -> None:
    points = [
        ParetoPoint("slow-worse", 100.0, 0.60),
        ParetoPoint("bm25", 1.0, 0.65),
        ParetoPoint("ce@100", 90.0, 0.72),
        ParetoPoint("ce@10", 10.0, 0.70),
        ParetoPoint("same-latency-worse", 10.0, 0.69),
    ]
    assert [points[i].label for i in pareto_front(points)] == ["bm25", "ce@10", "ce@100"]


def test_identical_points_both_stay_and_empty_input() -> None:
    assert pareto_front([ParetoPoint("a", 1.0, 0.5), ParetoPoint("b", 1.0, 0.5)]) == (0, 1)
    assert pareto_front([]) == ()


def test_front_matches_brute_force_on_random_points() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        # Rounded values create ties on each axis, the tricky cases.
        lat, acc = rng.integers(0, 8, size=n), rng.integers(0, 8, size=n) / 8
        points = [ParetoPoint(str(i), float(lat[i]), float(acc[i])) for i in range(n)]
        front = pareto_front(points)
        assert set(front) == _brute_force(points)
        assert [points[i].latency for i in front] == sorted(points[i].latency for i in front)


@pytest.mark.parametrize(
    ("latency", "accuracy", "match"),
    [(-1.0, 0.5, "latency must be >= 0"), (float("nan"), 0.5, "finite"),
     (1.0, float("inf"), "finite"), (1.0, "high", "number")],
)  # fmt: skip
def test_point_validation(latency: float, accuracy: float, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ParetoPoint("x", latency, accuracy)


def test_save_pareto_plot_writes_a_png_atomically(tmp_path: Path) -> None:
    points = [ParetoPoint("bm25", 1.0, 0.6, "first stage"), ParetoPoint("ce", 50.0, 0.7, "ce")]
    out = save_pareto_plot(points, tmp_path / "sub" / "pareto.png", y_label="nDCG@10")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["pareto.png"]  # no temp file left
    with pytest.raises(ConfigError, match=r"\.png"):
        save_pareto_plot(points, tmp_path / "pareto.svg")
    with pytest.raises(ConfigError, match="at least one point"):
        pareto_png([])


def test_plot_with_zero_latency_falls_back_to_linear_axis() -> None:
    png = pareto_png([ParetoPoint("free", 0.0, 0.5), ParetoPoint("ce", 5.0, 0.7)])
    assert png[:4] == b"\x89PNG"
