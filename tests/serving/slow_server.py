"""A live server whose model sleeps before scoring; the shutdown tests run it as a process.

Usage: python slow_server.py MODEL_DIR PORT DELAY_SECONDS
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from serving_helpers import load_encoder

from crossrank import CrossEncoder
from crossrank.inference.passages import PassageConfig
from crossrank.serving.app import create_app
from crossrank.serving.config import ServerConfig
from crossrank.serving.model import ServedModel
from crossrank.serving.server import listen, run_server


class SlowModel(ServedModel):
    def __init__(self, encoder: CrossEncoder, delay_s: float) -> None:
        super().__init__(encoder, name="tiny")
        self.delay_s = delay_s

    def logits(
        self, pairs: Sequence[tuple[str, str]], passages: PassageConfig | None
    ) -> np.ndarray:
        time.sleep(self.delay_s)
        return super().logits(pairs, passages)


def main(argv: Sequence[str]) -> int:
    model_dir, port, delay = argv
    model = SlowModel(load_encoder(Path(model_dir)), float(delay))
    app = create_app(model, ServerConfig(max_wait_s=0))
    run_server(app, listen("127.0.0.1", int(port)), graceful_timeout_s=30, log_level="info")
    print("stopped cleanly", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
