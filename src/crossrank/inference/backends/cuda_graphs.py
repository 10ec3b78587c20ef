"""Replay captured CUDA graphs of the forward pass instead of launching it kernel by kernel.

An eager forward of a 6-layer BERT launches over a hundred kernels from Python, about 7 ms of
host time per batch on an H200 host (BENCHMARKS.md, issue 3), and that time grows when the
tokeniser runs beside it. :class:`GraphedForward` captures the forward once per input shape
and then runs a batch as two input copies and one replay. Measured on an H200 it cut the main
thread's time in forward calls by more than half and raised pairs per host CPU-second by 9-23%,
but not pairs/s (BENCHMARKS.md), so :class:`~crossrank.inference.backends.TorchBackend` uses
it only when asked (``cuda_graphs=True``).

Shapes: the width is the batch's padded width (the engine pads to multiples of 8 on GPUs);
the rows are rounded up by :func:`graph_rows` (eight steps per power of two, at most 12.5%
extra rows), so the graphs captured for one call serve the batches of later ones. The rows
past a batch's own keep whatever earlier inputs left there (finite, discarded). At most
``max_graphs`` shapes are captured; batches of further shapes run eagerly. Each shape is run
once eagerly before its capture, so lazy initialisation and per-shape kernel choices happen
outside the graph. All graphs share one memory pool: they run one at a time on one stream,
and every graph's inputs and outputs stay allocated, so no graph overwrites another's live
tensors.

Example:
    >>> graphed = GraphedForward(forward, torch.device("cuda"))  # doctest: +SKIP
    >>> logits = graphed(ids, mask, None)  # inputs in pinned host memory  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from crossrank.errors import ConfigError

__all__ = ["GraphedForward", "graph_rows"]

Forward = Callable[[Tensor, Tensor, Tensor | None], Tensor]


def graph_rows(rows: int) -> int:
    """``rows`` rounded up to one of eight steps per power of two (exact below 16).

    >>> [graph_rows(n) for n in (1, 15, 16, 17, 100, 204, 1000)]
    [1, 15, 16, 18, 104, 208, 1024]
    """
    if rows < 1:
        raise ConfigError(f"a batch needs at least one row, got {rows}")
    step = 1 << max(0, rows.bit_length() - 4)
    return -(-rows // step) * step


@dataclass(frozen=True, slots=True)
class _Captured:
    graph: torch.cuda.CUDAGraph
    ids: Tensor
    mask: Tensor
    types: Tensor | None
    logits: Tensor


class GraphedForward:
    """``forward(ids, mask, types) -> logits`` through one captured graph per input shape."""

    def __init__(self, forward: Forward, device: torch.device, *, max_graphs: int = 256) -> None:
        if device.type != "cuda":
            raise ConfigError(f"CUDA graphs need a CUDA device, got {device}")
        self._forward = forward
        self._device = device
        self._max_graphs = max_graphs
        self._graphs: dict[tuple[int, int, bool], _Captured] = {}
        self._pool = torch.cuda.graph_pool_handle()

    @property
    def shapes(self) -> list[tuple[int, int, bool]]:
        """(rows, width, token types given) of every captured graph."""
        return list(self._graphs)

    def __call__(self, ids: Tensor, mask: Tensor, types: Tensor | None) -> Tensor:
        """Logits of one batch (host inputs, pinned for asynchronous copies)."""
        rows, width = ids.shape
        key = (graph_rows(rows), width, types is not None)
        captured = self._graphs.get(key)
        if captured is None and len(self._graphs) >= self._max_graphs:
            return self._forward(*(_to(t, self._device) for t in (ids, mask, types)))
        if captured is None:
            captured = self._capture(key)
            self._graphs[key] = captured
        captured.ids[:rows].copy_(ids, non_blocking=True)
        captured.mask[:rows].copy_(mask, non_blocking=True)
        if types is not None and captured.types is not None:
            captured.types[:rows].copy_(types, non_blocking=True)
        captured.graph.replay()
        # A copy: the next replay of this graph overwrites its output.
        return captured.logits[:rows].clone()

    def _capture(self, key: tuple[int, int, bool]) -> _Captured:
        rows, width, has_types = key
        ids = torch.zeros((rows, width), dtype=torch.long, device=self._device)
        mask = torch.ones_like(ids)
        types = torch.zeros_like(ids) if has_types else None
        side = torch.cuda.Stream(self._device)
        side.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(side):
            self._forward(ids, mask, types)  # warm-up outside the capture
        torch.cuda.current_stream(self._device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            logits = self._forward(ids, mask, types)
        return _Captured(graph, ids, mask, types, logits)


def _to(tensor: Tensor | None, device: torch.device) -> Tensor | None:
    return None if tensor is None else tensor.to(device, non_blocking=True)
