"""Which fused attention kernels PyTorch's SDPA may pick on a GPU.

On recent GPUs PyTorch prefers cuDNN's fused attention for bf16/fp16. cuDNN builds an
execution plan for every new input shape, and a trainer's batches come in many shapes: a
torch.profiler run of crossrank's trainer on an H200 (BENCHMARKS.md, issue 4) found cuDNN
attention taking 5.0 of 6.7 host CPU-seconds over 25 steps, about 20 ms per call, for 1-1.4 ms
of GPU time. :func:`attention_kernels` leaves SDPA flash, memory-efficient and math attention
only, which need no per-shape plan; all give the same attention up to float rounding. The
trainer uses it by default (2.44x CrossEncoderTrainer's pairs/s without cuDNN, 1.62x with it,
same H200 call). Scoring does not: its length-bucketed batch shapes repeat from call to call,
and once each has its plan cuDNN was the faster kernel there (BENCHMARKS.md, issue 3). The
setting is process-wide while the context is open (it is torch's global SDPA switch), so it
is entered around each forward pass, not held.

Example:
    >>> with attention_kernels(torch.device("cuda"), cudnn=False):  # doctest: +SKIP
    ...     logits = model(**inputs).logits
"""

from __future__ import annotations

import contextlib

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["NO_CUDNN", "attention_kernels"]

NO_CUDNN = (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH)


def attention_kernels(
    device: torch.device, *, cudnn: bool
) -> contextlib.AbstractContextManager[None]:
    """SDPA without cuDNN attention on CUDA when ``cudnn`` is False; otherwise unchanged.

    >>> with attention_kernels(torch.device("cpu"), cudnn=False):
    ...     pass
    """
    if cudnn or device.type != "cuda":
        return contextlib.nullcontext()
    return sdpa_kernel(list(NO_CUDNN))
