"""ServedModel: how scores are reported for binary, calibrated and graded heads."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import load_encoder

from crossrank import CrossEncoder
from crossrank.errors import ConfigError
from crossrank.evaluation.calibration import PlattScaling, TemperatureScaling, save_calibrator
from crossrank.models.heads import HeadSpec
from crossrank.models.tiny import build_tiny_checkpoint
from crossrank.serving.model import ServedModel

PAIRS = [("cat", "dogs and cats"), ("gene", "protein study"), ("bm25", "")]


def test_binary_head_reports_sigmoid_or_raw(reference: CrossEncoder, served: ServedModel) -> None:
    logits = served.logits(PAIRS, None)
    np.testing.assert_array_equal(logits, reference.predict(PAIRS))
    np.testing.assert_array_equal(
        served.present(logits, raw=False), reference.predict(PAIRS, activation="sigmoid")
    )
    np.testing.assert_array_equal(served.present(logits, raw=True), logits)
    assert served.score_kind(raw=False) == "sigmoid"
    assert served.score_kind(raw=True) == "raw"
    assert served.matches("tiny") and not served.matches("other")


def test_calibrator_applies_to_logits(reference: CrossEncoder) -> None:
    model = ServedModel(reference, name="m", calibrator=TemperatureScaling(3.0))
    logits = reference.predict(PAIRS)
    np.testing.assert_array_equal(
        model.present(logits, raw=False), TemperatureScaling(3.0).apply(logits)
    )
    assert model.score_kind(raw=False) == "calibrated-temperature"


def test_graded_head_reports_its_own_score(tmp_path: Path) -> None:
    path = build_tiny_checkpoint(tmp_path / "graded", heads=[HeadSpec.graded(3)])
    encoder = load_encoder(path)
    model = ServedModel(encoder, name="graded")
    scores = model.logits(PAIRS, None)
    np.testing.assert_array_equal(scores, encoder.predict(PAIRS))  # expected grade
    np.testing.assert_array_equal(model.present(scores, raw=False), scores)
    assert model.score_kind(raw=False) == model.score_kind(raw=True) == "graded"
    with pytest.raises(ConfigError, match=r"calibration\.json needs a binary primary head"):
        ServedModel(encoder, name="graded", calibrator=TemperatureScaling(2.0))


def test_shipped_name_finds_the_calibration_in_the_package(
    model_dir: Path, reference: CrossEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = tmp_path / "weights" / "tiny"
    shutil.copytree(model_dir, packaged)
    save_calibrator(PlattScaling(0.8, -2.5), packaged)
    lookup = {"crossrank/tiny": packaged}
    monkeypatch.setattr("crossrank.serving.model.shipped_model_dir", lookup.get)
    served = ServedModel.load("crossrank/tiny", reference)
    assert served.calibrator == PlattScaling(0.8, -2.5)
    assert served.score_kind(raw=False) == "calibrated-platt"
    assert ServedModel.load(model_dir, reference).calibrator is None
