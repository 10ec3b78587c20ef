"""The torch backend: the plain transformers forward (SDPA attention) in fp32, bf16 or fp16.

In fp32 its logits are the transformers forward's logits (padding and the CLS-only last
layer of :mod:`~crossrank.models.cls_only` only add float noise, well under 1e-5), which makes
it the reference every other backend is checked against. In bf16/fp16 the body runs in half
precision and the classification head (with its pooler) in fp32, so scores keep fp32
resolution (:func:`keep_heads_fp32`); ``mixed=True`` instead keeps fp32 weights and runs the
matrix products under autocast, the head's included (its logits then carry half precision).

On CUDA, the padding mask goes in expanded so that transformers does not wait for the GPU in
every forward pass (:mod:`~crossrank.models.padding_mask`), and ``forward_stream`` does not
wait for each batch: inputs go from pinned host memory with non-blocking copies, logits stay
on the GPU, and one device-to-host copy at the end returns them all, so the host prepares the
next batches while the GPU runs. ``cuda_graphs=True`` replays one captured graph per batch
shape instead of launching every kernel from Python
(:mod:`~crossrank.inference.backends.cuda_graphs`). SDPA may pick cuDNN's attention
(``cudnn_attention=False`` leaves it out, :mod:`~crossrank.models.attention_kernels`): for
scoring, whose batch shapes repeat, it was faster on an H200 once each shape had its plan.

Example:
    >>> backend = TorchBackend(model, device="cpu", dtype="fp32")  # doctest: +SKIP
    >>> logits = backend.forward(batch)  # doctest: +SKIP
    >>> per_batch = backend.forward_stream([batch, batch])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Literal

import numpy as np
import torch

from crossrank.errors import ConfigError
from crossrank.inference.backends.base import Backend
from crossrank.inference.backends.cuda_graphs import GraphedForward
from crossrank.inference.tokenize import TokenBatch
from crossrank.models.attention_kernels import attention_kernels
from crossrank.models.cls_only import cls_only, install_cls_only
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.loading import HEAD_MODULE_NAMES
from crossrank.models.padding_mask import mask_for, takes_expanded_mask

TorchDtype = Literal["fp32", "bf16", "fp16"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchBackend(Backend):
    """Runs ``model.module`` with torch; takes ownership (moves it to ``device``/``dtype``)."""

    def __init__(
        self,
        model: CrossEncoderModel,
        *,
        device: str = "cpu",
        dtype: TorchDtype = "fp32",
        threads: int | None = None,
        mixed: bool = False,
        cudnn_attention: bool = True,
        cuda_graphs: bool = False,
    ) -> None:
        if dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {tuple(_DTYPES)}, got {dtype!r}")
        if mixed and dtype == "fp32":
            raise ConfigError("mixed precision needs dtype 'bf16' or 'fp16', got 'fp32'")
        if threads is not None:
            # torch's thread pool is process-wide; only an explicit request changes it.
            torch.set_num_threads(threads)
        self.name = "torch" if dtype == "fp32" else f"torch-{dtype}" + ("-mixed" if mixed else "")
        self.device = device
        self._torch_device = torch.device(device)
        self.cudnn_attention = cudnn_attention
        self._model = model
        # Decided (and checked on a probe batch) before any cast to half precision.
        self.cls_only = install_cls_only(model.module)
        self.expanded_mask = takes_expanded_mask(model.module)
        if cuda_graphs and (self._torch_device.type != "cuda" or not self.expanded_mask):
            raise ConfigError(
                "cuda_graphs needs a CUDA device and a model that takes an expanded padding "
                f"mask (device {device!r}, expanded mask: {self.expanded_mask})"
            )
        self.cuda_graphs = cuda_graphs
        self._graphed: GraphedForward | None = None
        # mixed: weights, LayerNorms and the residual stream stay fp32 and only autocast's
        # operators (the matrix products) run in ``dtype``; otherwise the whole module is cast.
        self._autocast = _DTYPES[dtype] if mixed else None
        weights = torch.float32 if mixed else _DTYPES[dtype]
        self._model.module.to(device=self._torch_device, dtype=weights).eval()
        # Names of the head modules kept in fp32 (half-precision casts only).
        self.fp32_heads: list[str] = []
        if weights != torch.float32:
            self.fp32_heads = keep_heads_fp32(self._model.module)

    @torch.inference_mode()
    def forward(self, batch: TokenBatch) -> np.ndarray:
        return self._logits(batch, pinned=False).float().cpu().numpy()

    @torch.inference_mode()
    def forward_stream(self, batches: Iterable[TokenBatch]) -> list[np.ndarray]:
        """``forward`` of each batch; on CUDA without a host sync per batch (module docstring)."""
        if self._torch_device.type != "cuda":
            return [self.forward(batch) for batch in batches]
        return logits_to_host([self._logits(batch, pinned=True) for batch in batches])

    def _logits(self, batch: TokenBatch, *, pinned: bool) -> torch.Tensor:
        """Logits on the device; ``pinned`` copies inputs via page-locked memory, async."""

        def host(array: np.ndarray | None) -> torch.Tensor | None:
            if array is None:
                return None
            # A non-blocking copy is asynchronous only from pinned memory; torch's caching host
            # allocator does not reuse the pinned buffer before the copy has run, so the
            # tensor may go out of scope right after.
            tensor = torch.from_numpy(array)
            return tensor.pin_memory() if pinned else tensor

        inputs = [host(a) for a in (batch.input_ids, batch.attention_mask, batch.token_type_ids)]
        if pinned and self.cuda_graphs:
            if self._graphed is None:
                self._graphed = GraphedForward(self._run, self._torch_device)
            return self._graphed(*inputs)
        ids, mask, types = (
            None if t is None else t.to(self._torch_device, non_blocking=pinned) for t in inputs
        )
        return self._run(ids, mask, types)

    def _run(
        self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None
    ) -> torch.Tensor:
        """The model's logits for inputs already on the device (queued, not awaited)."""
        amp = (
            contextlib.nullcontext()
            if self._autocast is None
            else torch.autocast(self._torch_device.type, dtype=self._autocast)
        )
        kernels = attention_kernels(self._torch_device, cudnn=self.cudnn_attention)
        with cls_only(self._model.module), amp, kernels:
            # On CUDA, a 2D mask would make transformers wait for the GPU (padding_mask).
            mask = mask_for(self._model.module, mask, self.expanded_mask)
            return self._model.forward_logits(ids, mask, types)


def keep_heads_fp32(module: torch.nn.Module) -> list[str]:
    """Put ``module``'s classification head and pooler back in fp32, fed fp32 inputs.

    After a half-precision cast the logits would otherwise come out in bf16/fp16: bf16 keeps 8
    significant bits, so at a logit of 4 its steps are 0.03 and many of a query's candidates
    would tie. The head reads one position per sequence, so fp32 there costs next to nothing.
    Returns the modules' names.

    >>> TorchBackend(bert_model, device="cuda", dtype="bf16").fp32_heads  # doctest: +SKIP
    ['bert.pooler', 'classifier']
    """
    names: list[str] = []
    for name, sub in module.named_modules():
        inside = any(name.startswith(f"{kept}.") for kept in names)
        if name.rsplit(".", 1)[-1] in HEAD_MODULE_NAMES and not inside:
            sub.float().register_forward_pre_hook(_floating_args_to_fp32)
            names.append(name)
    return names


def _floating_args_to_fp32(_: torch.nn.Module, args: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(
        a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args
    )


def logits_to_host(logits: list[torch.Tensor]) -> list[np.ndarray]:
    """Float32 numpy copies of ``logits`` made with one device-to-host copy (one wait).

    >>> [a.tolist() for a in logits_to_host([torch.ones(1, 1), torch.zeros(2, 1)])]
    [[[1.0]], [[0.0], [0.0]]]
    """
    if not logits:
        return []
    host = torch.cat(logits).float().cpu().numpy()
    return np.split(host, np.cumsum([len(rows) for rows in logits])[:-1])
