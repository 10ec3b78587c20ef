"""Inference backends (torch, ONNX Runtime) behind one ``forward(batch) -> logits`` interface."""

from __future__ import annotations

import logging
from pathlib import Path

from crossrank.errors import BackendUnavailableError, ConfigError
from crossrank.inference.backends.base import (
    BACKEND_NAMES,
    Backend,
    check_device,
    default_device,
    default_threads,
    default_token_budget,
    resolve_backend,
)
from crossrank.inference.backends.onnx_backend import OnnxBackend
from crossrank.inference.backends.torch_backend import TorchBackend
from crossrank.models.cross_encoder import CrossEncoderModel

logger = logging.getLogger(__name__)

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "OnnxBackend",
    "TorchBackend",
    "build_backend",
    "check_device",
    "default_device",
    "default_threads",
    "default_token_budget",
    "resolve_backend",
]


def build_backend(
    model: CrossEncoderModel,
    name: str,
    device: str,
    *,
    threads: int | None = None,
    cache_dir: Path | None = None,
    cuda_graphs: bool = False,
) -> Backend:
    """Instantiate backend ``name`` (``auto`` resolved here) for ``model`` on ``device``.

    ``auto`` on CPU falls back to exact torch when the ONNX export is impossible for this
    architecture; an explicitly requested backend raises BackendUnavailableError instead.
    ``cuda_graphs`` (torch backends on CUDA only) replays captured CUDA graphs.

    >>> build_backend(model, "auto", "cpu").name  # doctest: +SKIP
    'onnx'
    """
    concrete = resolve_backend(name, device)
    if cuda_graphs and concrete in ("onnx", "onnx-int8"):
        raise ConfigError(f"cuda_graphs needs a torch backend on a CUDA device, got {concrete!r}")
    if concrete in ("onnx", "onnx-int8"):
        try:
            return OnnxBackend(
                model, quantized=concrete == "onnx-int8", threads=threads, cache_dir=cache_dir
            )
        except BackendUnavailableError as err:
            if name != "auto":
                raise
            logger.warning("ONNX backend unavailable (%s); auto falls back to exact torch", err)
            concrete = "torch"
    dtype = {"torch": "fp32", "torch-bf16": "bf16", "torch-fp16": "fp16"}[concrete]
    return TorchBackend(model, device=device, dtype=dtype, threads=threads, cuda_graphs=cuda_graphs)
