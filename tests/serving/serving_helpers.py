"""Helpers of the serving tests: tiny-model loading, documents, in-process live servers."""

from __future__ import annotations

import os

# Nothing may be fetched from the hub in tests; set before transformers reads it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI

from crossrank import CrossEncoder
from crossrank.inference.passages import PassageConfig
from crossrank.serving.model import ServedModel
from crossrank.serving.server import build_server, listen

MAX_LENGTH = 64
WORDS = [
    "the",
    "cat",
    "dog",
    "bm25",
    "rank",
    "query",
    "document",
    "search",
    "model",
    "gene",
    "protein",
    "cancer",
    "study",
    "cell",
]
ServerFactory = Callable[..., str]


def load_encoder(path: Path) -> CrossEncoder:
    return CrossEncoder.from_pretrained(path, backend="torch", device="cpu", max_length=MAX_LENGTH)


def make_docs(n: int, seed: int, min_words: int = 1, max_words: int = 12) -> list[str]:
    """Distinct pseudo-random documents of tiny-vocabulary words."""
    rng = np.random.default_rng(seed)
    return [
        f"{' '.join(rng.choice(WORDS, size=int(rng.integers(min_words, max_words + 1))))} {seed} {i}"
        for i in range(n)
    ]


class GatedModel(ServedModel):
    """A served model whose scoring waits for ``gate`` (tests control when batches run)."""

    def __init__(self, encoder: CrossEncoder, name: str = "tiny") -> None:
        super().__init__(encoder, name=name)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []

    def logits(
        self, pairs: Sequence[tuple[str, str]], passages: PassageConfig | None
    ) -> np.ndarray:
        self.calls.append(len(pairs))
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise RuntimeError("test gate never opened")
        return super().logits(pairs, passages)


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields the base URL."""
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = build_server(app, graceful_timeout_s=5, log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.005)
