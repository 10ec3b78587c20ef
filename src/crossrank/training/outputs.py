"""The files a training run leaves next to its weights, each written atomically.

``config.toml`` (the resolved recipe), ``metrics.jsonl`` (one JSON object per log or eval
event, rewritten whole each time so a reader never sees a torn line) and ``final.json``
(final dev numbers and run summary).

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> write_metrics(out, [{"event": "train", "step": 1, "loss": 0.5}])
    >>> (out / METRICS_FILE).read_text()
    '{"event": "train", "step": 1, "loss": 0.5}\\n'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crossrank.data.atomic import atomic_write
from crossrank.training.state import TrainState

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "FINAL_FILE",
    "METRICS_FILE",
    "run_summary",
    "weight_files",
    "write_final",
    "write_metrics",
]

CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.jsonl"
FINAL_FILE = "final.json"
CHECKPOINT_DIR = "checkpoints"


def write_metrics(out_dir: Path, history: Sequence[Mapping[str, Any]]) -> None:
    with atomic_write(out_dir / METRICS_FILE) as fh:
        for entry in history:
            fh.write(json.dumps(entry) + "\n")


def write_final(out_dir: Path, summary: Mapping[str, Any]) -> None:
    with atomic_write(out_dir / FINAL_FILE) as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")


def run_summary(state: TrainState, *, use_best: bool, world_size: int) -> dict[str, Any]:
    """The final.json content (``weight_files`` is added once the weights are written).

    ``dev`` holds the dev numbers of the saved weights: the best evaluation, or the last one
    when the last weights are kept; ``best_dev`` is the best evaluation either way.
    """
    evals = [e for e in state.history if e["event"] == "eval"]
    return {
        "schema_version": 1,
        "weights": "best_dev" if use_best else "last",
        "dev": state.best if use_best else (evals[-1] if evals else None),
        "best_dev": state.best,
        "steps": state.global_step,
        "pairs": state.pairs,
        "train_seconds": round(state.train_seconds, 3),
        "pairs_per_s": state.pairs / state.train_seconds if state.train_seconds else 0.0,
        "stopped_early": state.stopped_early,
        "time_limit_reached": state.time_limit_reached,
        "world_size": world_size,
    }


def weight_files(directory: Path) -> dict[str, int]:
    """Size in bytes of every safetensors file in ``directory``."""
    return {p.name: p.stat().st_size for p in sorted(directory.glob("*.safetensors"))}
