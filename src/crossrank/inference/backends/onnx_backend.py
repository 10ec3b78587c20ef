"""The ONNX Runtime backends: ``onnx`` (fused fp32, exact) and ``onnx-int8`` (quantised).

Both run on CPU with ``threads`` intra-op threads (default: physical cores) and full graph
optimisation. The graph comes from :mod:`~crossrank.inference.backends.onnx_export`'s
cache, so only the first load of a model pays for the export.

Example:
    >>> backend = OnnxBackend(model, quantized=False)  # doctest: +SKIP
    >>> logits = backend.forward(batch)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossrank.errors import BackendUnavailableError
from crossrank.inference.backends.base import Backend, default_threads
from crossrank.inference.backends.onnx_export import ensure_onnx
from crossrank.inference.tokenize import TokenBatch
from crossrank.models.cross_encoder import CrossEncoderModel

try:
    import onnxruntime
except ImportError:  # optional dependency
    onnxruntime = None


class OnnxBackend(Backend):
    """ONNX Runtime on CPU; ``quantized`` selects the dynamic-int8 graph."""

    def __init__(
        self,
        model: CrossEncoderModel,
        *,
        quantized: bool = False,
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if onnxruntime is None:
            raise BackendUnavailableError(
                "ONNX backends need onnxruntime: pip install 'crossrank[onnx]'"
            )
        self.name = "onnx-int8" if quantized else "onnx"
        self.device = "cpu"
        self.path = ensure_onnx(model, "int8" if quantized else "fp32", cache_dir)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads if threads is not None else default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = [i.name for i in self._session.get_inputs()]

    def forward(self, batch: TokenBatch) -> np.ndarray:
        arrays = {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
            "token_type_ids": batch.token_type_ids
            if batch.token_type_ids is not None
            else np.zeros_like(batch.input_ids),
        }
        logits = self._session.run(["logits"], {name: arrays[name] for name in self._inputs})[0]
        return np.asarray(logits, dtype=np.float32)
