"""``model.head_bias``: a fresh head starts at the given output bias; a trained head is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.models.tiny import build_tiny_checkpoint
from crossrank.training.config import ModelConfig
from crossrank.training.pipeline import build_cross_encoder


def _config(backbone: Path, head_bias: float | None) -> ModelConfig:
    return ModelConfig(
        backbone=str(backbone), max_length=48, max_query_length=16, head_bias=head_bias
    )


def test_head_bias_shifts_a_fresh_heads_logits_by_the_bias(tmp_path: Path) -> None:
    plain = build_tiny_checkpoint(tmp_path / "plain", seed=1, plain_encoder=True)
    shifted = build_cross_encoder(_config(plain, -3.0), seed=0)
    base = build_cross_encoder(_config(plain, None), seed=0)
    assert shifted.encoder.classifier.bias.tolist() == [-3.0]
    batch = base.collate(["a query", "another one"], ["some document", "a second document"])
    shifted.eval(), base.eval()
    with torch.no_grad():
        difference = shifted(**batch) - base(**batch)
    expected = -3.0 - float(base.encoder.classifier.bias)
    torch.testing.assert_close(difference, torch.full_like(difference, expected))


def test_head_bias_refuses_a_checkpoint_with_a_trained_head(tmp_path: Path) -> None:
    trained = build_tiny_checkpoint(tmp_path / "trained", seed=1)
    with pytest.raises(ConfigError, match="already has a trained classification head"):
        build_cross_encoder(_config(trained, -3.0), seed=0)
