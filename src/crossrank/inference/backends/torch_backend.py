"""The torch backend: the plain transformers forward (SDPA attention) in fp32, bf16 or fp16.

In fp32 its logits are the transformers forward's logits (padding only adds float noise,
well under 1e-5), which makes it the reference every other backend is checked against.

Example:
    >>> backend = TorchBackend(model, device="cpu", dtype="fp32")  # doctest: +SKIP
    >>> logits = backend.forward(batch)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from crossrank.errors import ConfigError
from crossrank.inference.tokenize import TokenBatch
from crossrank.models.cross_encoder import CrossEncoderModel

TorchDtype = Literal["fp32", "bf16", "fp16"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchBackend:
    """Runs ``model.module`` with torch; takes ownership (moves it to ``device``/``dtype``)."""

    def __init__(
        self,
        model: CrossEncoderModel,
        *,
        device: str = "cpu",
        dtype: TorchDtype = "fp32",
        threads: int | None = None,
    ) -> None:
        if dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {tuple(_DTYPES)}, got {dtype!r}")
        if threads is not None:
            # torch's thread pool is process-wide; only an explicit request changes it.
            torch.set_num_threads(threads)
        self.name = "torch" if dtype == "fp32" else f"torch-{dtype}"
        self.device = device
        self._torch_device = torch.device(device)
        self._model = model
        self._model.module.to(device=self._torch_device, dtype=_DTYPES[dtype]).eval()

    @torch.inference_mode()
    def forward(self, batch: TokenBatch) -> np.ndarray:
        def put(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).to(self._torch_device, non_blocking=True)

        token_types = None if batch.token_type_ids is None else put(batch.token_type_ids)
        logits = self._model.forward_logits(
            put(batch.input_ids), put(batch.attention_mask), token_types
        )
        return logits.float().cpu().numpy()
