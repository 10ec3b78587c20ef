"""Reading the ``config.json`` manifest and safetensors weights of crossrank's own formats.

Interaction models and CEDR-KNRM save a directory with a JSON manifest (``schema_version``,
``arch``, configs) and a ``model.safetensors``; both load through these two functions so a
bad file gets the same clear :class:`~crossrank.errors.ModelLoadError` either way.

Example:
    >>> import tempfile, json
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "config.json").write_text(json.dumps({"schema_version": 1}))
    >>> read_manifest(d, what="demo model", schema_version=1)
    {'schema_version': 1}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from crossrank.errors import ModelLoadError

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "load_weights", "read_manifest"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def read_manifest(
    directory: Path, *, what: str, schema_version: int, arch: str | None = None
) -> dict[str, Any]:
    """The JSON object in ``directory/config.json``, checked for ``schema_version`` (and
    ``arch`` when given); ``what`` names the expected model in errors."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelLoadError(f"{directory} is not a saved {what} (no {CONFIG_FILE})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{path}: invalid JSON: {err}") from err
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    if arch is not None and manifest.get("arch") != arch:
        raise ModelLoadError(f"{path}: not a {what} (arch must be {arch!r})")
    if manifest.get("schema_version") != schema_version:
        raise ModelLoadError(
            f"{path}: unsupported schema_version {manifest.get('schema_version')!r} "
            f"(expected {schema_version})"
        )
    return manifest


def load_weights(module: nn.Module, directory: Path) -> None:
    """Load ``directory/model.safetensors`` into ``module`` strictly (every key, every shape)."""
    path = directory / WEIGHTS_FILE
    try:
        module.load_state_dict(load_file(str(path)), strict=True)
    except (OSError, SafetensorError, RuntimeError) as err:
        raise ModelLoadError(f"cannot load weights from {path}: {err}") from err
