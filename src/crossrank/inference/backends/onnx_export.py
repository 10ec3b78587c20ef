"""Export a cross-encoder to ONNX, optimise it for CPU, validate it, and cache the files.

Pipeline (run once per model; later loads hit the cache):

1. ``torch.onnx.export`` (TorchScript exporter, eager attention so ORT recognises the
   pattern) with dynamic batch and sequence axes;
2. ``onnxruntime.transformers.optimizer`` fuses embeddings+LayerNorm, attention,
   bias+GELU and residual+LayerNorm (BERT/RoBERTa/ELECTRA families);
3. :func:`~crossrank.inference.backends.onnx_graph.cls_only_last_layer`;
4. validation against the torch forward on a padded probe batch: the first of
   (rewritten, fused, plain export) that matches within 1e-4 is kept;
5. on request, dynamic int8 quantisation of that graph.

Files live in ``cache_dir/<key>/`` where the key hashes the weights, config, export code
version and library versions; directories are built under a temporary name and renamed
into place, so a crash never leaves a half-written cache entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import transformers

from crossrank.errors import BackendUnavailableError
from crossrank.inference.backends.onnx_graph import cls_only_last_layer, quantize_int8
from crossrank.models.cross_encoder import CrossEncoderModel

try:
    import onnx
    import onnxruntime
    from onnxruntime.transformers import optimizer as ort_optimizer
except ImportError:  # optional dependency
    onnx = None

logger = logging.getLogger(__name__)

EXPORT_VERSION = 2  # bump whenever the produced graph changes
OPSET = 17
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
META_FILE = "export.json"
# Families whose graphs the ORT "bert" optimiser fuses (same post-LN encoder layout).
FUSABLE_MODEL_TYPES = {"bert", "roberta", "xlm-roberta", "camembert", "electra"}
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
RTOL = 1e-4
LARGE_MODEL_BYTES = 1_800_000_000
Variant = Literal["fp32", "int8"]


def default_cache_dir() -> Path:
    """``$CROSSRANK_CACHE_DIR/onnx``, else ``~/.cache/crossrank/onnx``."""
    root = os.environ.get("CROSSRANK_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "crossrank") / "onnx"


def ensure_onnx(model: CrossEncoderModel, variant: Variant, cache_dir: Path | None = None) -> Path:
    """Path of the cached ONNX file for ``model``, building it on first use."""
    if onnx is None:
        raise BackendUnavailableError(
            "ONNX backends need onnxruntime and onnx: pip install 'crossrank[onnx]'"
        )
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / cache_key(model)
    if not (entry / FP32_FILE).is_file():
        _build_entry(model, entry)
    if variant == "fp32":
        return entry / FP32_FILE
    if not (entry / INT8_FILE).is_file():
        # Written beside its final name, then renamed: readers never see a partial file.
        with tempfile.TemporaryDirectory(dir=entry, prefix=".int8-") as tmp:
            quantize_int8(entry / FP32_FILE, Path(tmp) / INT8_FILE)
            os.replace(Path(tmp) / INT8_FILE, entry / INT8_FILE)
    return entry / INT8_FILE


def cache_key(model: CrossEncoderModel) -> str:
    """Hash of everything the exported graph depends on."""
    digest = hashlib.sha256()
    versions = {
        "export": EXPORT_VERSION,
        "opset": OPSET,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "inputs": model_input_names(model),
    }
    digest.update(json.dumps(versions, sort_keys=True).encode())
    digest.update(model.config.to_json_string(use_diff=False).encode())
    for name, tensor in sorted(model.module.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:32]


def model_input_names(model: CrossEncoderModel) -> list[str]:
    """Graph inputs, in the exported order (token types only where the tokenizer uses them)."""
    names = set(model.tokenizer.model_input_names)
    return [n for n in INPUT_NAMES if n in names or n != "token_type_ids"]


def _build_entry(model: CrossEncoderModel, entry: Path) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}-"))
    try:
        meta = _export_and_optimise(model, tmp)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if entry.exists() and not (entry / FP32_FILE).is_file():
            shutil.rmtree(entry, ignore_errors=True)  # a damaged entry: replace it
        try:
            os.rename(tmp, entry)
        except OSError:
            # Another process built the same entry first; its files are equivalent.
            if not (entry / FP32_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _export_and_optimise(model: CrossEncoderModel, out: Path) -> dict[str, object]:
    raw = out / "raw.onnx"
    _torch_export(model, raw)
    candidates: list[tuple[str, onnx.ModelProto]] = []
    plain = onnx.load(str(raw))
    if model.config.model_type in FUSABLE_MODEL_TYPES:
        unfused = onnx.ModelProto()
        unfused.CopyFrom(plain)  # the optimiser rewrites its input in place
        fused = _ort_fuse(unfused, model)
        rewritten = onnx.ModelProto()
        rewritten.CopyFrom(fused)
        if cls_only_last_layer(rewritten):
            candidates.append(("fused+cls_only", rewritten))
        candidates.append(("fused", fused))
    candidates.append(("plain", plain))
    probe = _probe_batch(model)
    expected = _torch_logits(model, probe)
    for label, proto in candidates:
        _save(proto, out / FP32_FILE)
        diff = _max_diff(out / FP32_FILE, probe, expected)
        if diff <= RTOL * max(1.0, float(np.abs(expected).max())):
            raw.unlink()
            logger.info("ONNX graph %s validated (max |diff| %.2e)", label, diff)
            return {"graph": label, "max_abs_diff": diff, "opset": OPSET}
        logger.warning("ONNX graph %s differs from torch by %.2e; trying the next", label, diff)
    raise BackendUnavailableError(
        f"the ONNX export of {model.source} does not reproduce the torch scores; use backend='torch'"
    )


def _save(proto: onnx.ModelProto, path: Path) -> None:
    """Save, moving weights to a side file past protobuf's 2 GB message limit."""
    large = proto.ByteSize() > LARGE_MODEL_BYTES
    onnx.save(proto, str(path), save_as_external_data=large, location=path.name + ".data")


def _torch_export(model: CrossEncoderModel, path: Path) -> None:
    module = model.module
    if (
        next(module.parameters()).device.type != "cpu"
        or next(module.parameters()).dtype != torch.float32
    ):
        raise BackendUnavailableError("ONNX export needs the model on CPU in float32")
    names = model_input_names(model)
    probe = _probe_batch(model)
    args = tuple(torch.from_numpy(probe[n]) for n in names)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    with _eager_attention(module), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            # The exporter restores the wrapper's train/eval mode afterwards, recursively:
            # an eval wrapper keeps the model in eval mode (no dropout) for later scoring.
            torch.onnx.export(
                _LogitsOnly(module, names).eval(),
                args,
                str(path),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
        except Exception as err:  # the exporter raises many unrelated error types
            raise BackendUnavailableError(f"ONNX export of {model.source} failed: {err}") from err


class _LogitsOnly(torch.nn.Module):
    """Positional inputs in ``names`` order, logits out (what the exporter traces)."""

    def __init__(self, module: torch.nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.module = module
        self.names = list(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.module(**dict(zip(self.names, inputs, strict=True))).logits


@contextlib.contextmanager
def _eager_attention(module: transformers.PreTrainedModel) -> Iterator[None]:
    """Trace with eager attention: its op pattern is the one ORT fuses into ``Attention``."""
    previous = module.config._attn_implementation
    module.set_attn_implementation("eager")
    try:
        yield
    finally:
        module.set_attn_implementation(previous)


def _ort_fuse(proto: onnx.ModelProto, model: CrossEncoderModel) -> onnx.ModelProto:
    config = model.config
    optimised = ort_optimizer.optimize_model(
        proto,
        model_type="bert",
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        opt_level=0,
    )
    fused = optimised.model
    # Fused nodes live in ORT's contrib domain; declare it so ONNX tools (quantiser, checker)
    # can read the graph, not just ONNX Runtime.
    if not any(o.domain == "com.microsoft" for o in fused.opset_import):
        fused.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return fused


def _probe_batch(model: CrossEncoderModel) -> dict[str, np.ndarray]:
    """Three rows of different lengths (so padding is exercised) and two token types."""
    rng = np.random.default_rng(0)
    length = min(48, model.max_positions)
    vocab = int(model.config.vocab_size)
    ids = rng.integers(5, vocab, size=(3, length), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, length - 9 :] = 0
    mask[2, 7:] = 0
    ids[mask == 0] = int(model.tokenizer.pad_token_id or 0)
    types = np.zeros_like(ids)
    if int(getattr(model.config, "type_vocab_size", 1)) > 1:
        types[:, length // 3 :] = 1
        types[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _torch_logits(model: CrossEncoderModel, probe: dict[str, np.ndarray]) -> np.ndarray:
    names = model_input_names(model)
    with torch.inference_mode():
        inputs = {n: torch.from_numpy(probe[n]) for n in names}
        return model.module(**inputs).logits.float().numpy()


def _max_diff(path: Path, probe: dict[str, np.ndarray], expected: np.ndarray) -> float:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {i.name: probe[i.name] for i in session.get_inputs()}
    got = session.run(["logits"], feed)[0]
    return float(np.abs(got - expected).max()) if np.all(np.isfinite(got)) else float("inf")
