"""Fixtures: a tiny random cross-encoder, an offline reference, live servers on loopback.

Live servers run uvicorn in a thread of the test process (fast; tests can reach into the
app and inject gated models); the shutdown tests start real subprocesses instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

import httpx
from serving_helpers import GatedModel, ServerFactory, live_server, load_encoder

from crossrank import CrossEncoder
from crossrank.models.tiny import build_tiny_checkpoint
from crossrank.serving.app import create_app
from crossrank.serving.config import ServerConfig
from crossrank.serving.model import ServedModel


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("serving") / "tiny")


@pytest.fixture(scope="session")
def reference(model_dir: Path) -> CrossEncoder:
    """The offline engine the server's answers are checked against (its own instance)."""
    return load_encoder(model_dir)


@pytest.fixture(scope="session")
def served(model_dir: Path) -> ServedModel:
    return ServedModel(load_encoder(model_dir), name="tiny")


@pytest.fixture
def gated(model_dir: Path) -> Iterator[GatedModel]:
    model = GatedModel(load_encoder(model_dir))
    yield model
    model.gate.set()  # never leave a worker blocked


@pytest.fixture
def start_server(served: ServedModel) -> Iterator[ServerFactory]:
    """``start_server(config=..., model=...)`` -> base URL of a fresh live server."""
    with ExitStack() as stack:

        def start(config: ServerConfig | None = None, model: ServedModel | None = None) -> str:
            app = create_app(model or served, config or ServerConfig())
            return stack.enter_context(live_server(app))

        yield start


@pytest.fixture(scope="module")
def module_server(model_dir: Path) -> Iterator[str]:
    """One default-config server shared by a module's read-only tests."""
    model = ServedModel(load_encoder(model_dir), name="tiny")
    with live_server(create_app(model, ServerConfig())) as url:
        yield url


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c
