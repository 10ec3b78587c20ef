"""Integrated gradients on tiny random BERTs: completeness, invariances, inputs and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.evaluation.explain import IGConfig, encode_pair, integrated_gradients
from crossrank.inference import CrossEncoder
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadSpec
from crossrank.models.tiny import build_tiny_checkpoint

QUERY = "what is the effect of protein on cancer cells"
DOC = "The study results show a protein effect in blood. Cats and dogs rank long text."


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> CrossEncoder:
    path = build_tiny_checkpoint(tmp_path_factory.mktemp("ig") / "tiny", seed=3)
    return CrossEncoder.from_pretrained(path, backend="torch", device="cpu")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> CrossEncoderModel:
    path = build_tiny_checkpoint(
        tmp_path_factory.mktemp("ig") / "graded", heads=[HeadSpec.graded(3)], seed=1
    )
    return CrossEncoderModel.from_pretrained(path)


def test_completeness_within_one_percent_and_reported(encoder: CrossEncoder) -> None:
    result = integrated_gradients(encoder, QUERY, DOC)
    delta = result.score - result.baseline_score
    assert abs(delta) > 1e-4  # a real path, so the relative check below means something
    gap = float(result.attributions.sum()) - delta
    assert result.completeness_gap == pytest.approx(gap, abs=1e-12)
    assert result.relative_error == pytest.approx(abs(gap) / abs(delta))
    assert result.relative_error < 0.01
    assert result.to_dict()["relative_error"] == result.relative_error


def test_coarse_integration_shows_a_larger_error(encoder: CrossEncoder) -> None:
    fine = integrated_gradients(encoder, QUERY, DOC, IGConfig(steps=64))
    coarse = integrated_gradients(encoder, QUERY, DOC, IGConfig(steps=1))
    # One trapezoid is the endpoint-gradient average: exact only for a linear model.
    assert coarse.relative_error > 3 * fine.relative_error


def test_graded_head_and_midpoint_rule_are_complete(graded: CrossEncoderModel) -> None:
    result = integrated_gradients(graded, QUERY, DOC, IGConfig(steps=50, rule="midpoint"))
    assert 0.0 <= result.score <= 2.0  # expected grade of 3 grades
    assert result.relative_error < 0.01


def test_score_is_the_predicted_score(encoder: CrossEncoder) -> None:
    result = integrated_gradients(encoder, QUERY, DOC, IGConfig(steps=4))
    assert result.score == pytest.approx(float(encoder.predict([(QUERY, DOC)])[0]), abs=1e-5)


def test_special_tokens_get_nothing_and_text_tokens_line_up(encoder: CrossEncoder) -> None:
    result = integrated_gradients(encoder, QUERY, DOC, IGConfig(steps=8))
    assert result.tokens[0] == "[CLS]"
    assert result.attributions[0] == 0.0
    assert result.attributions[result.query_span[1]] == 0.0  # the middle [SEP]
    assert len(result.query_attributions) == len(result.query_tokens)
    assert len(result.doc_attributions) == len(result.doc_tokens)
    assert result.query_tokens[:3] == ("what", "is", "the")
    assert np.count_nonzero(result.doc_attributions) == len(result.doc_tokens)


def test_batch_size_does_not_change_attributions(encoder: CrossEncoder) -> None:
    one = integrated_gradients(encoder, QUERY, DOC, IGConfig(steps=10, batch_size=1))
    many = integrated_gradients(encoder, QUERY, DOC, IGConfig(steps=10, batch_size=64))
    np.testing.assert_allclose(one.attributions, many.attributions, atol=1e-6, rtol=1e-4)


def test_pad_and_zero_baselines(tmp_path: Path) -> None:
    model = CrossEncoderModel.from_pretrained(build_tiny_checkpoint(tmp_path / "tiny", seed=3))
    zero = integrated_gradients(model, QUERY, DOC, IGConfig(steps=32, baseline="zero"))
    # The tiny BERT zero-initialises its [PAD] row, so both baselines agree until it moves.
    pad = integrated_gradients(model, QUERY, DOC, IGConfig(steps=32, baseline="pad"))
    assert pad.baseline_score == pytest.approx(zero.baseline_score, abs=1e-7)
    with torch.no_grad():
        model.module.get_input_embeddings().weight[0].normal_(
            0.0, 0.5, generator=torch.Generator().manual_seed(0)
        )
    moved = integrated_gradients(model, QUERY, DOC, IGConfig(steps=32, baseline="pad"))
    assert moved.baseline_score != pytest.approx(zero.baseline_score, abs=1e-6)
    assert moved.score == pytest.approx(zero.score, abs=1e-6)  # the input is unchanged
    assert zero.relative_error < 0.01
    assert moved.relative_error < 0.01


def test_model_is_left_as_found(encoder: CrossEncoder) -> None:
    module = encoder.model.module
    module.train()
    try:
        integrated_gradients(encoder, QUERY, DOC, IGConfig(steps=2))
        assert module.training
    finally:
        module.eval()
    assert all(p.grad is None for p in module.parameters())


def test_long_documents_are_truncated_like_predict(encoder: CrossEncoder) -> None:
    long_doc = " ".join(["protein effect in blood."] * 80)
    inputs = encode_pair(encoder, QUERY, long_doc, 48)
    assert len(inputs.input_ids) == 48
    assert inputs.doc_truncated
    assert not encode_pair(encoder, QUERY, DOC, 256).doc_truncated


def test_bad_inputs_raise_config_errors(encoder: CrossEncoder) -> None:
    with pytest.raises(ConfigError, match="steps"):
        IGConfig(steps=0)
    with pytest.raises(ConfigError, match="baseline must be one of"):
        IGConfig(baseline="mask")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="query is empty"):
        integrated_gradients(encoder, "   ", DOC)
    with pytest.raises(ConfigError, match="no document token fits"):
        integrated_gradients(encoder, QUERY, DOC, max_length=8)
    with pytest.raises(ConfigError, match="exceeds the model's"):
        integrated_gradients(encoder, QUERY, DOC, max_length=100_000)
    with pytest.raises(ConfigError, match="CrossEncoder or CrossEncoderModel"):
        integrated_gradients("model", QUERY, DOC)  # type: ignore[arg-type]


def test_half_precision_weights_are_refused(tmp_path: Path) -> None:
    path = build_tiny_checkpoint(tmp_path / "tiny")
    model = CrossEncoderModel.from_pretrained(path)
    model.module.to(torch.bfloat16)
    with pytest.raises(ConfigError, match="float32"):
        integrated_gradients(model, QUERY, DOC)
