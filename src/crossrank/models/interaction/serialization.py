"""Architecture registry, and saving/loading interaction models as safetensors directories.

A saved model is a directory holding ``config.json`` (``arch``, ``schema_version``, the model
config and the embedding config), ``model.safetensors`` (every weight, including a frozen
embedding matrix, so the directory is self-contained and immune to backbone upgrades) and, for
word2vec embeddings, ``vocab.txt`` (one word per line, row order). MiniLM-sourced models
re-create their WordPiece tokenizer from the installed backbone package. The directory is
built beside the target and renamed into place, so a crash never leaves a partial model.

Example:
    >>> import tempfile, torch
    >>> from crossrank.models.interaction.embeddings import TermEmbeddings
    >>> model = build_interaction_model("knrm", TermEmbeddings.from_tensor(torch.randn(20, 4)))
    >>> path = save_interaction_model(model, tempfile.mkdtemp() + "/knrm")
    >>> type(load_interaction_model(path)).__name__
    'KNRM'
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import MappingProxyType
from typing import Any

from safetensors.torch import save_file

from crossrank.data.atomic import atomic_dir
from crossrank.errors import ConfigError, ModelLoadError
from crossrank.models.interaction.base import InteractionModel, config_from_dict
from crossrank.models.interaction.coattention import CoAttention, CoAttentionConfig
from crossrank.models.interaction.conv_knrm import ConvKNRM
from crossrank.models.interaction.embeddings import EmbeddingConfig, TermEmbeddings
from crossrank.models.interaction.knrm import KNRM
from crossrank.models.interaction.tensor_matching import NeuralTensorModel
from crossrank.models.interaction.text import sentence_end_ids
from crossrank.models.manifest import CONFIG_FILE, WEIGHTS_FILE, load_weights, read_manifest

__all__ = [
    "ARCHITECTURES",
    "build_interaction_model",
    "default_config",
    "load_interaction_model",
    "save_interaction_model",
]

SCHEMA_VERSION = 1
VOCAB_FILE = "vocab.txt"

ARCHITECTURES: MappingProxyType[str, type[InteractionModel]] = MappingProxyType(
    {cls.arch: cls for cls in (KNRM, ConvKNRM, NeuralTensorModel, CoAttention)}
)


def _model_class(arch: str) -> type[InteractionModel]:
    if arch not in ARCHITECTURES:
        raise ConfigError(
            f"unknown interaction architecture {arch!r}; choose from {sorted(ARCHITECTURES)}"
        )
    return ARCHITECTURES[arch]


def default_config(arch: str, embeddings: TermEmbeddings) -> Any:
    """The default config of ``arch``; co-attention's sentence marks follow the vocabulary.

    >>> import torch
    >>> default_config("conv_knrm", TermEmbeddings.from_tensor(torch.randn(20, 4))).n_filters
    128
    """
    model_class = _model_class(arch)
    if model_class is CoAttention and embeddings.vocabulary is not None:
        return CoAttentionConfig(sentence_end_ids=sentence_end_ids(embeddings.tokenizer()))
    return model_class.config_class()


def build_interaction_model(
    arch: str, embeddings: TermEmbeddings, config: Any | None = None
) -> InteractionModel:
    """A fresh model of ``arch`` ("knrm", "conv_knrm", "tensor", "coattention")."""
    model_class = _model_class(arch)
    return model_class(
        config if config is not None else default_config(arch, embeddings), embeddings
    )


def save_interaction_model(model: InteractionModel, directory: str | Path) -> Path:
    """Write ``model`` to ``directory`` atomically (replacing an existing one); returns the path."""
    manifest = {
        "arch": model.arch,
        "schema_version": SCHEMA_VERSION,
        "config": asdict(model.config),
        "embeddings": asdict(model.embeddings.config),
    }
    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    with atomic_dir(directory) as tmp:
        (tmp / CONFIG_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        if model.embeddings.vocabulary is not None:
            words = "\n".join(model.embeddings.vocabulary) + "\n"
            (tmp / VOCAB_FILE).write_text(words, encoding="utf-8")
    return Path(directory)


def load_interaction_model(directory: str | Path) -> InteractionModel:
    """Rebuild a model saved by ``save_interaction_model`` (on CPU, in eval mode)."""
    directory = Path(directory)
    manifest = read_manifest(directory, what="interaction model", schema_version=SCHEMA_VERSION)
    model_class = ARCHITECTURES.get(manifest.get("arch", ""))
    if model_class is None:
        raise ModelLoadError(f"{directory / CONFIG_FILE}: unknown arch {manifest.get('arch')!r}")
    embedding_config = config_from_dict(EmbeddingConfig, manifest.get("embeddings", {}))
    vocabulary = _read_vocabulary(directory) if embedding_config.source == "word2vec" else None
    try:
        embeddings = TermEmbeddings(embedding_config, vocabulary)
        model = model_class(
            config_from_dict(model_class.config_class, manifest["config"]), embeddings
        )
    except (ConfigError, KeyError) as err:
        raise ModelLoadError(f"{directory / CONFIG_FILE}: {err}") from err
    load_weights(model, directory)
    return model.eval()


def _read_vocabulary(directory: Path) -> list[str]:
    path = directory / VOCAB_FILE
    if not path.is_file():
        raise ModelLoadError(f"{directory} has word2vec embeddings but no {VOCAB_FILE}")
    return path.read_text(encoding="utf-8").splitlines()
