"""Safe loading of Hugging Face checkpoints: safetensors only, checked against the config.

Every failure is a :class:`~crossrank.errors.ModelLoadError` that names the directory and the
problem (no weights, pickle-only weights, config/weights mismatch, head size mismatch), so a
wrong checkpoint never yields silently wrong scores.

Example:
    >>> weights = find_weight_files(resolve_model_dir("path/to/model"))  # doctest: +SKIP
    >>> fresh_head = not has_head_weights(checkpoint_keys(weights))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import transformers
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
)

from crossrank.errors import ConfigError, ModelLoadError
from crossrank.models.registry import shipped_model_dir

PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Files fetched for a hub id: configs, safetensors and tokenizer files, never pickle weights.
HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "merges.txt"]
# Module names of classification heads (and the pooler that feeds some of them): the only
# weights a plain encoder checkpoint may lack, since crossrank initialises them fresh.
HEAD_MODULE_NAMES = ("classifier", "pooler")


def resolve_model_dir(name_or_path: str | Path, revision: str | None = None) -> Path:
    """Local directory of a checkpoint: a shipped model's folder (see models.registry), the
    path itself, or a hub snapshot (no pickle files).

    >>> resolve_model_dir("/definitely/not/here")  # doctest: +SKIP
    """
    shipped = shipped_model_dir(str(name_or_path))
    if shipped is not None:
        return shipped
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(f"{path} is a file; expected a model directory")
    if str(name_or_path).startswith((".", "/", "~")):
        raise ModelLoadError(f"model directory {path} does not exist")
    try:
        local = snapshot_download(
            str(name_or_path), revision=revision, allow_patterns=HUB_ALLOW_PATTERNS
        )
    except (HFValidationError, OSError, ValueError, RuntimeError) as err:
        # Offline mode, unknown repo or no network: the hub client's errors all land here.
        raise ModelLoadError(
            f"{name_or_path!r} is neither a local model directory nor a downloadable hub id: {err}"
        ) from err
    return Path(local)


def find_weight_files(model_dir: Path) -> list[Path]:
    """The safetensors weight files of ``model_dir``; refuses pickle-only checkpoints."""
    if not (model_dir / "config.json").is_file():
        raise ModelLoadError(f"{model_dir}: no config.json (not a Hugging Face model directory)")
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index).get("weight_map", {})
        files = sorted({model_dir / name for name in weight_map.values()})
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ModelLoadError(
                f"{model_dir}: shards listed in {index.name} are missing: {missing}"
            )
        if files:
            return files
    files = sorted(model_dir.glob("*.safetensors"))
    if files:
        return files
    pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in PICKLE_WEIGHT_SUFFIXES)
    if pickles:
        raise ModelLoadError(
            f"{model_dir}: only pickle weights found ({', '.join(pickles)}); crossrank loads "
            "safetensors only because unpickling can run arbitrary code. Convert once with "
            "transformers: AutoModel.from_pretrained(dir).save_pretrained(dir, "
            "safe_serialization=True), after checking the source is trusted."
        )
    raise ModelLoadError(f"{model_dir}: no model weights (*.safetensors) found")


def checkpoint_keys(weight_files: list[Path]) -> set[str]:
    """Tensor names stored in the safetensors files (header read only, no tensor data)."""
    keys: set[str] = set()
    for file in weight_files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                keys.update(handle.keys())
        except Exception as err:  # safetensors raises its own error types for corrupt files
            raise ModelLoadError(f"{file}: unreadable safetensors file: {err}") from err
    return keys


def has_head_weights(keys: set[str]) -> bool:
    """True when the checkpoint stores a classification head (not a plain encoder)."""
    return any("classifier" in key.split(".") for key in keys)


def load_config(model_dir: Path, trust_remote_code: bool) -> PretrainedConfig:
    try:
        return AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as err:
        raise ModelLoadError(f"{model_dir}: cannot read config.json: {err}") from err


def load_tokenizer(model_dir: Path, trust_remote_code: bool) -> Any:
    """The fast (Rust) tokenizer of ``model_dir``; ModelLoadError when none can be built."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"{model_dir}: cannot load a tokenizer: {err}") from err
    if (
        not getattr(tokenizer, "is_fast", False)
        or getattr(tokenizer, "backend_tokenizer", None) is None
    ):
        raise ModelLoadError(
            f"{model_dir}: crossrank needs a fast tokenizer (tokenizer.json); "
            f"got {type(tokenizer).__name__}"
        )
    return tokenizer


def load_classifier(
    model_dir: Path,
    config: PretrainedConfig,
    num_labels: int,
    *,
    fresh_head: bool,
    seed: int,
    trust_remote_code: bool,
) -> PreTrainedModel:
    """Sequence-classification module with ``num_labels`` outputs, checked against the weights.

    ``fresh_head`` means the checkpoint is a plain encoder: its head (and pooler) may be
    missing and are initialised from ``seed`` without touching the global torch RNG.
    """
    with _quiet_transformers(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            module, info = AutoModelForSequenceClassification.from_pretrained(
                model_dir,
                config=config,
                use_safetensors=True,
                trust_remote_code=trust_remote_code,
                ignore_mismatched_sizes=True,
                output_loading_info=True,
                attn_implementation="sdpa",
                # fp16/bf16 checkpoints (the shipped models) are upcast: backends pick the
                # compute precision, and CPU kernels and ONNX export need fp32 weights.
                dtype=torch.float32,
            )
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as err:
            raise ModelLoadError(f"{model_dir}: cannot load the model: {err}") from err
    check_loading_info(model_dir, module, info, num_labels, fresh_head)
    return module.eval()


def set_head_bias(module: PreTrainedModel, value: float) -> None:
    """Fill the output bias of ``module``'s classification head (one per label) with ``value``.

    >>> set_head_bias(model.module, -3.0)  # doctest: +SKIP
    """
    width = module.config.num_labels
    biases = [
        param
        for name, param in module.named_parameters()
        if _is_head_key(name, ("classifier",)) and name.endswith("bias") and param.shape == (width,)
    ]
    if len(biases) != 1:
        raise ConfigError(
            f"{type(module).__name__}: expected one classifier output bias of size {width}, "
            f"found {len(biases)}"
        )
    with torch.no_grad():
        biases[0].fill_(value)


def check_loading_info(
    model_dir: Path,
    module: PreTrainedModel,
    info: dict[str, Any],
    num_labels: int,
    fresh_head: bool,
) -> None:
    """Raise ModelLoadError when the weights do not fit the config or the requested heads."""
    mismatched = sorted(info.get("mismatched_keys", ()), key=lambda m: m[0])
    head_mismatch = [m for m in mismatched if _is_head_key(m[0], ("classifier",))]
    body_mismatch = [m for m in mismatched if not _is_head_key(m[0], ("classifier",))]
    if body_mismatch:
        name, ckpt, model = body_mismatch[0]
        raise ModelLoadError(
            f"{model_dir}: config/weights mismatch: {len(body_mismatch)} tensors differ in shape, "
            f"e.g. {name}: checkpoint {tuple(ckpt)} vs config {tuple(model)}"
        )
    if head_mismatch:
        name, ckpt, model = head_mismatch[0]
        raise ModelLoadError(
            f"{model_dir}: head size mismatch: the requested heads need {num_labels} outputs but "
            f"the checkpoint's {name} has shape {tuple(ckpt)} (expected {tuple(model)})"
        )
    missing = sorted(info.get("missing_keys", ()))
    bad_missing = [k for k in missing if not (fresh_head and _is_head_key(k))]
    if bad_missing:
        raise ModelLoadError(
            f"{model_dir}: config/weights mismatch: {len(bad_missing)} weights the config needs "
            f"are missing from the checkpoint, e.g. {bad_missing[:3]}"
        )
    backbone = {name for name, _ in module.base_model.named_children()}
    prefix = f"{module.base_model_prefix}."
    unexpected = [
        k
        for k in sorted(info.get("unexpected_keys", ()))
        if k.removeprefix(prefix).split(".")[0] in backbone
    ]
    if unexpected:
        raise ModelLoadError(
            f"{model_dir}: config/weights mismatch: {len(unexpected)} backbone weights in the "
            f"checkpoint have no place in the config, e.g. {unexpected[:3]}"
        )


def _is_head_key(key: str, modules: tuple[str, ...] = HEAD_MODULE_NAMES) -> bool:
    return any(part in modules for part in key.split("."))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: unreadable JSON: {err}") from err


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report: crossrank raises its own, clearer errors instead."""
    previous = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(previous)
