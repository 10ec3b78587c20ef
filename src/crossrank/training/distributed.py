"""Process-level runtime of a training run: data-parallel context, device, precision, seeds.

A run started with ``torchrun`` (environment ``WORLD_SIZE`` > 1) joins a process group
(gloo on CPU, NCCL on CUDA); otherwise it is a world of one and every collective is a no-op.
Only rank 0 evaluates and writes files; the others meet it at the collectives.

Example:
    >>> ctx = DistContext.single("cpu")
    >>> ctx.is_main, ctx.world_size, ctx.broadcast_flag(True)
    (True, 1, True)
"""

from __future__ import annotations

import contextlib
import datetime
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from crossrank.errors import BackendUnavailableError, ConfigError

__all__ = [
    "DistContext",
    "autocast",
    "determinism",
    "init_distributed",
    "resolve_device",
    "seed_everything",
    "shutdown_distributed",
]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# Ranks wait at a collective while rank 0 evaluates on dev or writes a checkpoint; NCCL's
# default (10 minutes) would abort the job during a long dev evaluation.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class DistContext:
    """This process's place in the (possibly one-process) data-parallel world."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @classmethod
    def single(cls, device: str) -> DistContext:
        return cls(0, 1, 0, torch.device(device))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, value: float) -> float:
        """Mean of ``value`` over all ranks."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (e.g. its early-stopping decision)."""
        if not self.distributed:
            return flag
        tensor = torch.tensor([int(flag)], dtype=torch.int64, device=self._comm_device)
        dist.broadcast(tensor, src=0)
        return bool(tensor.item())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` on every rank, in rank order (picklable objects)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into ``module`` on every rank."""
        if not self.distributed:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    @property
    def _comm_device(self) -> torch.device:
        # NCCL collectives need CUDA tensors; gloo takes CPU tensors.
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def init_distributed(device: str) -> DistContext:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1, else a world of one.

    ``device`` is ``auto`` | ``cpu`` | ``cuda``; each rank takes GPU ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if torch_device.type == "cuda" else "gloo"
        if torch_device.type == "cuda":
            torch.cuda.set_device(torch_device)
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world_size, timeout=COLLECTIVE_TIMEOUT
        )
    return DistContext(rank, world_size, local_rank, torch_device)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this rank's GPU when CUDA is available, else the CPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise BackendUnavailableError("device='cuda' but torch sees no CUDA device")
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Mixed-precision autocast for bf16/fp16; fp32 runs unchanged."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def determinism(enabled: bool, threads: int | None) -> Iterator[None]:
    """Deterministic kernels (bit-exact CPU reruns) and a CPU thread count, for a block.

    Both are process-wide torch settings, so the previous values come back afterwards.
    """
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if enabled:
            # cuBLAS needs a fixed workspace for deterministic matmuls; harmless on CPU.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])
