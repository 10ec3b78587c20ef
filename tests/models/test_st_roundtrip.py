"""A model moves between crossrank and sentence-transformers without conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank import CrossEncoder
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadSpec
from crossrank.models.tiny import build_tiny_checkpoint

st = pytest.importorskip("sentence_transformers")

PAIRS = [
    ("what is bm25", "bm25 is a ranking function used by search engines"),
    ("cats", "dogs and cats are animals"),
    ("gene effect on cancer", "a study of the effect of one gene on cancer cells " * 3),
    ("blood", ""),
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def plain_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("plain") / "model", plain_encoder=True)


def test_crossrank_save_loads_in_sentence_transformers_with_identical_scores(
    tmp_path: Path, plain_encoder_dir: Path
) -> None:
    ours = CrossEncoder(
        CrossEncoderModel.from_pretrained(plain_encoder_dir, heads=[HeadSpec.binary()], seed=7),
        backend="torch",
        device="cpu",
        max_length=64,
    )
    path = ours.save_pretrained(tmp_path / "saved")
    theirs = st.CrossEncoder(str(path), device="cpu", max_length=64)
    # sentence-transformers applies a sigmoid to 1-label models by default.
    assert isinstance(theirs.activation_fn, torch.nn.Sigmoid)
    np.testing.assert_allclose(
        ours.predict(PAIRS, activation="sigmoid"), theirs.predict(PAIRS), atol=1e-6
    )
    raw = theirs.predict(PAIRS, activation_fn=torch.nn.Identity())
    np.testing.assert_allclose(ours.predict(PAIRS), raw, atol=1e-6)


def test_sentence_transformers_save_loads_in_crossrank(tmp_path: Path, tiny_dir: Path) -> None:
    theirs = st.CrossEncoder(str(tiny_dir), device="cpu", max_length=64)
    theirs.save(str(tmp_path / "st"))
    ours = CrossEncoder.from_pretrained(
        tmp_path / "st", backend="torch", device="cpu", max_length=64
    )
    expected = theirs.predict(PAIRS, activation_fn=torch.nn.Identity())
    np.testing.assert_allclose(ours.predict(PAIRS), expected, atol=1e-6)
