"""Brier/ECE against hand-computed values; temperature and Platt scaling; calibrator files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from crossrank.errors import ConfigError, MissingDataError
from crossrank.evaluation.calibration import (
    CALIBRATION_FILE,
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
    save_calibrator,
)

# The hand-computed example: 5 pairs.
PROBS = np.array([0.9, 0.7, 0.6, 0.2, 0.1])
LABELS = np.array([1, 1, 0, 0, 1])


def test_brier_hand_computed() -> None:
    # squared errors: (0.9-1)^2=0.01, (0.7-1)^2=0.09, (0.6-0)^2=0.36, (0.2-0)^2=0.04,
    # (0.1-1)^2=0.81; sum 1.31; mean 1.31 / 5 = 0.262
    assert brier_score(PROBS, LABELS) == pytest.approx(0.262, abs=1e-12)


def test_ece_equal_width_hand_computed() -> None:
    # 2 bins: [0, 0.5) holds 0.2, 0.1 -> confidence 0.15, accuracy 1/2, gap 0.35;
    # [0.5, 1] holds 0.9, 0.7, 0.6 -> confidence 2.2/3, accuracy 2/3, gap 0.2/3.
    # ECE = 2/5 * 0.35 + 3/5 * 0.2/3 = 0.14 + 0.04 = 0.18
    assert expected_calibration_error(PROBS, LABELS, n_bins=2) == pytest.approx(0.18, abs=1e-12)
    # 5 bins of width 0.2: [0,.2): 0.1 (label 1) gap 0.9; [.2,.4): 0.2 (label 0) gap 0.2;
    # [.4,.6): empty; [.6,.8): 0.7, 0.6 -> conf 0.65, acc 0.5, gap 0.15; [.8,1]: 0.9 (1) gap 0.1
    # ECE = (0.9 + 0.2 + 2 * 0.15 + 0.1) / 5 = 1.5 / 5 = 0.3
    bins = reliability_bins(PROBS, LABELS, n_bins=5)
    assert bins.counts.tolist() == [1, 1, 0, 2, 1]
    assert np.isnan(bins.confidence[2]) and np.isnan(bins.accuracy[2])
    np.testing.assert_allclose(bins.confidence[3], 0.65)
    np.testing.assert_allclose(bins.accuracy[3], 0.5)
    assert bins.ece == pytest.approx(0.3, abs=1e-12)


def test_ece_equal_mass_hand_computed() -> None:
    # sorted: 0.1(1), 0.2(0), 0.6(0) | 0.7(1), 0.9(1) -- array_split puts the extra item first.
    # bin 0: confidence 0.9/3 = 0.3, accuracy 1/3, gap 1/30; bin 1: conf 0.8, acc 1, gap 0.2
    # ECE = 3/5 * 1/30 + 2/5 * 0.2 = 0.02 + 0.08 = 0.1; inner edge halfway (0.6+0.7)/2 = 0.65
    bins = reliability_bins(PROBS, LABELS, n_bins=2, strategy="mass")
    assert bins.counts.tolist() == [3, 2]
    np.testing.assert_allclose(bins.edges, [0.0, 0.65, 1.0])
    np.testing.assert_allclose(bins.confidence, [0.3, 0.8])
    np.testing.assert_allclose(bins.accuracy, [1 / 3, 1.0])
    assert expected_calibration_error(PROBS, LABELS, 2, "mass") == pytest.approx(0.1, abs=1e-12)


def test_mass_bins_never_exceed_examples_and_perfect_calibration_is_zero() -> None:
    bins = reliability_bins(PROBS, LABELS, n_bins=15, strategy="mass")
    assert bins.counts.tolist() == [1, 1, 1, 1, 1]
    perfect = np.array([0.0, 0.0, 1.0, 1.0])
    assert expected_calibration_error(perfect, np.array([0, 0, 1, 1])) == 0.0
    assert brier_score(perfect, np.array([0, 0, 1, 1])) == 0.0


def test_probability_one_lands_in_last_bin() -> None:
    bins = reliability_bins(np.array([0.0, 1.0]), np.array([0, 1]), n_bins=4)
    assert bins.counts.tolist() == [1, 0, 0, 1]


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        ([0.5, 1.2], [0, 1], "in \\[0, 1\\]"),
        ([0.5, np.nan], [0, 1], "in \\[0, 1\\]"),
        ([0.5, 0.5], [0, 2], "binary"),
        ([0.5, 0.5], [0, 1, 1], "shape"),
        ([], [], "non-empty"),
    ],
)
def test_invalid_inputs_raise(probs: list[float], labels: list[int], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        brier_score(np.array(probs), np.array(labels))


def test_invalid_bins_raise() -> None:
    with pytest.raises(ConfigError, match="n_bins"):
        reliability_bins(PROBS, LABELS, n_bins=0)
    with pytest.raises(ConfigError, match="strategy"):
        reliability_bins(PROBS, LABELS, strategy="quantile")  # type: ignore[arg-type]


def overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits 3x too large: labels drawn from sigmoid(true_logit), scores = 3 * true_logit."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0.0, 1.5, size=n)
    labels = (rng.random(n) < special.expit(true_logit)).astype(np.int64)
    return 3.0 * true_logit, labels


def test_temperature_scaling_lowers_ece_and_keeps_ranking() -> None:
    logits, labels = overconfident(4000, seed=0)
    raw = special.expit(logits)
    calibrator = fit_temperature(logits, labels)
    calibrated = calibrator.apply(logits)
    assert calibrator.temperature == pytest.approx(3.0, rel=0.15)
    for strategy in ("width", "mass"):
        before = expected_calibration_error(raw, labels, strategy=strategy)
        after = expected_calibration_error(calibrated, labels, strategy=strategy)
        assert after < 0.5 * before
    assert brier_score(calibrated, labels) < brier_score(raw, labels)
    np.testing.assert_array_equal(np.argsort(-calibrated), np.argsort(-logits))


def test_temperature_fitted_on_dev_half_helps_held_out_half() -> None:
    logits, labels = overconfident(6000, seed=1)
    dev, test = slice(0, 3000), slice(3000, None)
    calibrator = fit_temperature(logits[dev], labels[dev])
    before = expected_calibration_error(special.expit(logits[test]), labels[test])
    after = expected_calibration_error(calibrator.apply(logits[test]), labels[test])
    assert after < 0.5 * before
    assert log_loss(calibrator.apply(logits[test]), labels[test]) < log_loss(
        special.expit(logits[test]), labels[test]
    )


def test_platt_recovers_generating_parameters() -> None:
    rng = np.random.default_rng(2)
    scores = rng.normal(0.0, 2.0, size=20_000)
    labels = (rng.random(scores.size) < special.expit(0.5 * scores - 1.0)).astype(np.int64)
    platt = fit_platt(scores, labels)
    assert platt.a == pytest.approx(0.5, abs=0.05)
    assert platt.b == pytest.approx(-1.0, abs=0.08)
    ece_raw = expected_calibration_error(special.expit(scores), labels)
    assert expected_calibration_error(platt.apply(scores), labels) < 0.3 * ece_raw


def test_fit_is_stable_for_huge_logits() -> None:
    logits = np.array([-800.0, -300.0, 300.0, 800.0, -500.0, 400.0])
    labels = np.array([0, 1, 0, 1, 0, 1])
    temperature = fit_temperature(logits, labels)
    assert np.isfinite(temperature.temperature) and temperature.temperature > 1.0
    assert np.isfinite(fit_platt(logits, labels).a)


def test_degenerate_dev_sets_warn() -> None:
    logits = np.array([-2.0, -1.0, 1.0, 2.0])
    with pytest.warns(UserWarning, match="search bound"):
        assert fit_temperature(logits, np.array([0, 0, 1, 1])).temperature < 0.01  # separable
    with pytest.warns(UserWarning, match="search bound"):
        assert fit_temperature(logits, np.array([1, 1, 0, 0])).temperature > 100  # inverted
    with pytest.warns(UserWarning, match="slope"):
        assert fit_platt(logits, np.array([1, 0, 1, 0])).a < 0


def test_fit_needs_both_classes() -> None:
    with pytest.raises(ConfigError, match="all 4 labels are 1"):
        fit_temperature(np.array([0.1, 0.2, 0.3, 0.4]), np.array([1, 1, 1, 1]))
    with pytest.raises(ConfigError, match="finite"):
        fit_platt(np.array([0.1, np.inf]), np.array([0, 1]))


def test_calibrators_validate_parameters() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        TemperatureScaling(0.0)
    with pytest.raises(ConfigError, match="temperature"):
        TemperatureScaling(float("nan"))
    with pytest.raises(ConfigError, match="Platt parameter a"):
        PlattScaling(float("inf"), 0.0)


@pytest.mark.parametrize("calibrator", [TemperatureScaling(2.5), PlattScaling(0.8, -0.3)])
def test_save_load_round_trip(
    tmp_path: Path, calibrator: TemperatureScaling | PlattScaling
) -> None:
    path = save_calibrator(calibrator, tmp_path)
    assert path == tmp_path / CALIBRATION_FILE
    assert json.loads(path.read_text())["schema_version"] == 1
    loaded = load_calibrator(tmp_path)
    assert loaded == calibrator
    logits = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(loaded.apply(logits), calibrator.apply(logits))
    assert [p.name for p in tmp_path.iterdir()] == [CALIBRATION_FILE]  # no temp file left


def test_load_without_calibrator_is_none(tmp_path: Path) -> None:
    assert load_calibrator(tmp_path) is None
    with pytest.raises(MissingDataError, match="does not exist"):
        load_calibrator(tmp_path / "missing")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"schema_version": 9, "kind": "temperature", "temperature": 2}', "schema_version 9"),
        ('{"schema_version": 1, "kind": "isotonic"}', "unknown calibrator kind 'isotonic'"),
        ('{"schema_version": 1, "kind": "platt", "a": 1.0}', "missing \\['b'\\]"),
        ('{"schema_version": 1, "kind": "temperature", "temperature": 2, "x": 1}', "'x'"),
        ('{"schema_version": 1, "kind": "temperature", "temperature": -1}', "> 0"),
        ('{"schema_version": 1, "kind": "platt", "a": "1", "b": 0}', "parameter a"),
    ],
)
def test_load_rejects_bad_files_naming_them(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / CALIBRATION_FILE).write_text(content)
    with pytest.raises(ConfigError, match=match) as info:
        load_calibrator(tmp_path)
    assert str(tmp_path / CALIBRATION_FILE) in str(info.value)


def test_pairs_from_run_treats_unjudged_as_non_relevant() -> None:
    run = {
        "q1": {"d1": 2.0, "d2": 0.5, "d3": -1.0},
        "q2": {"d4": 1.5},
        "q3": {"d5": 0.1},  # not in qrels: skipped
    }
    qrels = {"q1": {"d1": 2, "d3": 0}, "q2": {"d4": 1}}
    scores, labels = pairs_from_run(run, qrels)
    np.testing.assert_array_equal(scores, [2.0, 0.5, -1.0, 1.5])
    np.testing.assert_array_equal(labels, [1, 0, 0, 1])
    with pytest.raises(ConfigError, match="no run query is judged"):
        pairs_from_run({"q3": {"d5": 0.1}}, qrels)
