"""Models shipped inside the package, under stable names (no hub, no download).

``crossrank/minilm-scifact-v3`` is the SciFact reranker trained by
``configs/scifact-gpu-v3.toml`` and the default ``--model`` of ``crossrank rerank``;
``crossrank/minilm-scifact-v2`` (``configs/scifact-gpu-v2b.toml``) and
``crossrank/minilm-scifact`` (``configs/scifact-gpu.toml``) are its predecessors. All are
all-MiniLM-L6-v2 cross-encoders in fp16 safetensors, with their training record (and a
Platt calibration) beside the weights; BENCHMARKS.md says how they were made and what they
score. A shipped name is resolved before any local directory or hub id of the same spelling.

Example:
    >>> shipped_model_dir("crossrank/minilm-scifact").name
    'minilm-scifact'
    >>> shipped_model_dir("some-org/some-model") is None
    True
"""

from __future__ import annotations

from pathlib import Path

from crossrank.errors import ModelLoadError

__all__ = ["DEFAULT_RERANKER", "SHIPPED_MODELS", "WEIGHTS_DIR", "shipped_model_dir"]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
# Stable name -> folder under WEIGHTS_DIR. A new model version gets a new name and folder,
# so the weights of a released name never change in git history.
SHIPPED_MODELS: dict[str, str] = {
    "crossrank/minilm-scifact": "minilm-scifact",
    "crossrank/minilm-scifact-v2": "minilm-scifact-v2",
    "crossrank/minilm-scifact-v3": "minilm-scifact-v3",
}
DEFAULT_RERANKER = "crossrank/minilm-scifact-v3"


def shipped_model_dir(name: str) -> Path | None:
    """Directory of a shipped model, or None when ``name`` is not a shipped model's name.

    A shipped name whose files are missing (a broken installation) is an error, never a
    silent fallback to the hub.
    """
    folder = SHIPPED_MODELS.get(str(name))
    if folder is None:
        return None
    path = WEIGHTS_DIR / folder
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"shipped model {name!r}: {path} has no config.json; this installation of "
            "crossrank is incomplete (reinstall it)"
        )
    return path
