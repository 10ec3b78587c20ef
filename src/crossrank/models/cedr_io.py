"""Saving and loading CEDR-KNRM models (see :mod:`crossrank.models.cedr`).

A saved model is a directory holding ``config.json`` (``arch``, ``schema_version`` and the
:class:`~crossrank.models.cedr.CEDRConfig`), ``model.safetensors`` (the ranking layer) and
``backbone/``, the fine-tuned cross-encoder in the plain Hugging Face layout (it loads on its
own with :meth:`CrossEncoderModel.from_pretrained`).

Example:
    >>> path = save_cedr(model, "out/cedr")  # doctest: +SKIP
    >>> load_cedr(path).config.layers  # doctest: +SKIP
    (0, 1, 2, 3)
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import save

from crossrank.data.atomic import atomic_dir, atomic_write, atomic_write_bytes
from crossrank.errors import ConfigError, ModelLoadError
from crossrank.models.cedr import CEDR_ARCH, CEDR_SCHEMA_VERSION, CEDRKNRM, CEDRConfig, CEDRHead
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.interaction.base import config_from_dict
from crossrank.models.manifest import CONFIG_FILE, WEIGHTS_FILE, load_weights, read_manifest

__all__ = ["BACKBONE_DIR", "is_cedr_directory", "load_cedr", "save_cedr", "write_cedr_head"]

BACKBONE_DIR = "backbone"


def write_cedr_head(directory: str | Path, head: CEDRHead) -> None:
    """Write ``config.json`` and the ranking layer's weights into ``directory``, file by file
    atomically (the backbone goes to ``directory/backbone`` separately)."""
    target = Path(directory)
    manifest = {
        "arch": CEDR_ARCH,
        "schema_version": CEDR_SCHEMA_VERSION,
        "config": asdict(head.config),
        "backbone": BACKBONE_DIR,
    }
    state = {name: t.detach().cpu().contiguous() for name, t in head.state_dict().items()}
    with atomic_write_bytes(target / WEIGHTS_FILE) as fh:
        fh.write(save(state, metadata={"format": "pt"}))
    with atomic_write(target / CONFIG_FILE) as fh:
        fh.write(json.dumps(manifest, indent=2) + "\n")


def save_cedr(model: CEDRKNRM, directory: str | Path) -> Path:
    """Write ``model`` to ``directory`` atomically (replacing an existing one); returns it."""
    with atomic_dir(directory) as tmp:
        model.backbone.save_pretrained(tmp / BACKBONE_DIR)
        write_cedr_head(tmp, model.head)
    return Path(directory)


def is_cedr_directory(directory: str | Path) -> bool:
    """True when ``directory/config.json`` declares a CEDR-KNRM model."""
    path = Path(directory) / CONFIG_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("arch") == CEDR_ARCH


def load_cedr(directory: str | Path) -> CEDRKNRM:
    """Rebuild a model saved by :func:`save_cedr` (or a CEDR training run), in eval mode."""
    directory = Path(directory)
    manifest = read_manifest(
        directory, what="CEDR model", schema_version=CEDR_SCHEMA_VERSION, arch=CEDR_ARCH
    )
    config = config_from_dict(CEDRConfig, manifest.get("config", {}))
    backbone = CrossEncoderModel.from_pretrained(directory / BACKBONE_DIR)
    try:
        model = CEDRKNRM(backbone, config)
    except ConfigError as err:
        raise ModelLoadError(f"{directory / CONFIG_FILE}: {err}") from err
    load_weights(model.head, directory)
    return model.eval()
