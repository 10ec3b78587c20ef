"""The backend interface, backend names, and default device/thread choices.

A backend turns one padded :class:`~crossrank.inference.tokenize.TokenBatch` into float32
logits ``[rows, num_labels]`` (``forward``), or a stream of batches into one logits array
per batch (``forward_stream``, what the engine calls: a backend may overlap the stream's
batches, e.g. keep GPU logits on the device until the end). Implementations subclass
:class:`Backend` to inherit the per-batch default of ``forward_stream``. Names:

==============  =====================================================  ==========
name            what                                                   exact fp32
==============  =====================================================  ==========
``torch``       transformers forward, fp32, CPU or GPU                 yes
``torch-bf16``  transformers forward in bfloat16 (GPU)                 no
``torch-fp16``  transformers forward in float16 (GPU)                  no
``onnx``        ONNX Runtime, fused graph, fp32 (CPU)                  yes
``onnx-int8``   ONNX Runtime, dynamic int8 quantisation (CPU)          no
``auto``        CPU: ``onnx`` if onnxruntime is installed, else        CPU: yes
                ``torch``; GPU: ``torch-bf16`` (``torch-fp16`` where
                bf16 is unsupported). Quantisation is never implicit.
==============  =====================================================  ==========
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from crossrank.errors import BackendUnavailableError, ConfigError
from crossrank.inference.tokenize import TokenBatch

try:
    import onnxruntime
except ImportError:  # optional dependency: the onnx backends report it when chosen
    onnxruntime = None

BACKEND_NAMES: tuple[str, ...] = ("auto", "torch", "torch-bf16", "torch-fp16", "onnx", "onnx-int8")
GPU_ONLY = ("torch-bf16", "torch-fp16")
CPU_ONLY = ("onnx", "onnx-int8")


@runtime_checkable
class Backend(Protocol):
    """Runs the model on padded token batches.

    Example:
        >>> [logits.shape for logits in backend.forward_stream(batches)]  # doctest: +SKIP
        [(64, 1), (128, 1)]
    """

    name: str
    device: str

    def forward(self, batch: TokenBatch) -> np.ndarray:
        """Float32 logits ``[rows, num_labels]`` for one batch."""
        ...

    def forward_stream(self, batches: Iterable[TokenBatch]) -> list[np.ndarray]:
        """``forward`` of each batch, in order; consumes ``batches`` to the end.

        This default runs them one by one; overrides must return the same values.
        """
        return [self.forward(batch) for batch in batches]


def default_device() -> str:
    """``cuda`` when a GPU is visible to torch, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> str:
    """Validate a device string (``cpu``, ``cuda``, ``cuda:1``...)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device {device!r} is not a valid torch device: {err}") from err
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(f"device {device!r} requested but torch sees no CUDA GPU")
    return device


def resolve_backend(name: str, device: str) -> str:
    """The concrete backend for ``name`` on ``device`` (``auto`` picks the fastest exact one)."""
    if name not in BACKEND_NAMES:
        raise ConfigError(f"backend must be one of {BACKEND_NAMES}, got {name!r}")
    on_gpu = torch.device(device).type != "cpu"
    if name == "auto":
        if on_gpu:
            return "torch-bf16" if _bf16_supported(device) else "torch-fp16"
        return "onnx" if onnxruntime is not None else "torch"
    if name in GPU_ONLY and not on_gpu:
        raise BackendUnavailableError(
            f"backend {name!r} needs a GPU (CPUs here lack fast half-precision math); "
            "use 'onnx-int8' for fast approximate CPU scoring"
        )
    if name in CPU_ONLY:
        if on_gpu:
            raise BackendUnavailableError(
                f"backend {name!r} runs on CPU only; on {device!r} use 'torch-bf16' or 'torch'"
            )
        if onnxruntime is None:
            raise BackendUnavailableError(
                f"backend {name!r} needs onnxruntime and onnx: pip install 'crossrank[onnx]'"
            )
    return name


def default_threads() -> int:
    """Physical cores available to this process (logical CPUs when topology is unknown)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cpus:
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(
                (topo / "physical_package_id").read_text().strip()
                + ":"
                + (topo / "core_id").read_text().strip()
            )
        except OSError:
            return len(cpus)
    return max(len(cores), 1)


def default_token_budget(device: str) -> int:
    """Padded tokens per batch: 2048 on CPU, 65536 on GPU.

    On CPU a batch's activations should stay in cache (2048 tokens x 1536 FFN units x 4 bytes
    = 12 MB): measured on SciFact with MiniLM-L6, 2048 beat 8192 by 10-20% pairs/s at max
    length 256 and 512. A GPU needs large batches to be busy.
    """
    return 2048 if torch.device(device).type == "cpu" else 65536


def _bf16_supported(device: str) -> bool:
    with torch.cuda.device(torch.device(device)):
        return torch.cuda.is_bf16_supported()
