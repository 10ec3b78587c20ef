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

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "FINAL_FILE",
    "METRICS_FILE",
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


def weight_files(directory: Path) -> dict[str, int]:
    """Size in bytes of every safetensors file in ``directory``."""
    return {p.name: p.stat().st_size for p in sorted(directory.glob("*.safetensors"))}
