from __future__ import annotations

import numpy as np
import pytest

from crossrank.errors import ConfigError, ModelLoadError
from crossrank.models.heads import HeadLayout, HeadSpec


def test_binary_score_is_raw_logit_and_sigmoid_is_probability() -> None:
    layout = HeadLayout.single(HeadSpec.binary())
    logits = np.array([[-2.0], [0.0], [3.0]], dtype=np.float32)
    np.testing.assert_array_equal(layout.primary_scores(logits), logits[:, 0])
    probs = layout.primary_scores(logits, activation="sigmoid")
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits[:, 0])), rtol=1e-6)


def test_graded_score_is_expected_grade() -> None:
    head = HeadSpec.graded(3)
    logits = np.log(np.array([[0.2, 0.3, 0.5], [1.0, 1e-9, 1e-9]], dtype=np.float32))
    scores = HeadLayout.single(head).primary_scores(logits)
    np.testing.assert_allclose(scores, [0.3 + 2 * 0.5, 0.0], atol=1e-6)


def test_multi_head_slices_columns_and_primary_chooses_ranking_score() -> None:
    layout = HeadLayout.of(
        [HeadSpec.binary("click"), HeadSpec.graded(3, "grade"), HeadSpec.regression("ctr")], "grade"
    )
    assert layout.num_labels == 5
    logits = np.array([[7.0, 0.0, 0.0, 50.0, -1.5]], dtype=np.float32)
    scores = layout.scores(logits)
    assert scores["click"][0] == 7.0
    assert scores["ctr"][0] == -1.5
    assert scores["grade"][0] == pytest.approx(2.0, abs=1e-5)
    assert layout.primary_scores(logits)[0] == pytest.approx(2.0, abs=1e-5)
    assert layout.id2label() == {0: "click", 1: "grade:0", 2: "grade:1", 3: "grade:2", 4: "ctr"}


def test_config_round_trip() -> None:
    layout = HeadLayout.of([HeadSpec.graded(4, "g"), HeadSpec.binary("b")], "b")
    assert HeadLayout.from_config(layout.to_config()) == layout


@pytest.mark.parametrize(
    "section",
    [
        {"schema_version": 99, "heads": [{"name": "r", "kind": "binary", "size": 1}]},
        {"schema_version": 1, "heads": [{"name": "r", "kind": "ordinal", "size": 1}]},
        {"schema_version": 1, "heads": [{"name": "r", "kind": "binary", "size": 2}]},
        {"schema_version": 1},
    ],
)
def test_malformed_config_section_is_a_load_error(section: dict) -> None:
    with pytest.raises(ModelLoadError):
        HeadLayout.from_config(section)


def test_invalid_specs_and_inputs_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="size >= 2"):
        HeadSpec.graded(1)
    with pytest.raises(ConfigError, match="unique"):
        HeadLayout.of([HeadSpec.binary("x"), HeadSpec.regression("x")])
    with pytest.raises(ConfigError, match="primary"):
        HeadLayout.of([HeadSpec.binary("x")], primary="y")
    layout = HeadLayout.single(HeadSpec.regression())
    with pytest.raises(ConfigError, match="binary"):
        layout.primary_scores(np.zeros((1, 1), dtype=np.float32), activation="sigmoid")
    with pytest.raises(ConfigError, match="columns"):
        layout.primary_scores(np.zeros((1, 2), dtype=np.float32))
