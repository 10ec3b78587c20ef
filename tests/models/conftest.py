"""Tiny random checkpoints shared by the model tests (built once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossrank.models.tiny import build_tiny_checkpoint

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def plain_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("plain") / "model", plain_encoder=True)
