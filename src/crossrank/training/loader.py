"""Model inputs of each training step, prepared one step ahead on a background thread.

Tokenising and assembling a step's (query, document) rows takes a few milliseconds of CPU;
on a GPU that time is hidden by preparing step ``i + 1`` while step ``i`` runs (the Rust
tokenizer releases the GIL). What is prepared depends only on the batch, so the order of
training, and therefore exact resume, is unaffected.

A group's members have very different lengths, so padding every pair of a micro-batch to its
longest pair wastes a quarter of the tokens at 512 (SciFact). With ``chunk_tokens`` the pairs
are sorted by length and fed in chunks under that token budget (one forward call per chunk,
one backward for the micro-batch), which cuts the padding to a few percent.

Example:
    >>> loader = StepLoader(model, groups, batches, start=3, split=split)  # doctest: +SKIP
    >>> for micro_batches in loader:  # one list per optimiser step  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from crossrank.inference.batching import plan_batches
from crossrank.training.data import GroupSet
from crossrank.training.trainable import TrainableModel

__all__ = ["ChunkedForward", "MicroBatch", "StepLoader", "prepare_micro_batch"]


@dataclass(frozen=True)
class MicroBatch:
    """A micro-batch of groups: collated input chunks and where each pair's logit goes.

    Pairs are fed to the model in ``chunks`` (each padded to its own longest pair);
    ``order`` maps the concatenated chunk outputs back to pair order, the order of
    ``rows`` (group of each pair) and ``cols`` (member within its group).
    """

    chunks: list[dict[str, Tensor]]
    order: Tensor
    rows: Tensor
    cols: Tensor
    labels: Tensor
    mask: Tensor

    @property
    def pairs(self) -> int:
        return len(self.rows)

    def to(self, device: torch.device) -> MicroBatch:
        return self._map(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> MicroBatch:
        return self._map(lambda t: t.pin_memory())

    def _map(self, fn: Callable[[Tensor], Tensor]) -> MicroBatch:
        return MicroBatch(
            [{k: fn(v) for k, v in chunk.items()} for chunk in self.chunks],
            *(fn(t) for t in (self.order, self.rows, self.cols, self.labels, self.mask)),
        )


class ChunkedForward(nn.Module):
    """Runs a model over a micro-batch's chunks in one call (one DDP forward per micro-batch)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, chunks: list[dict[str, Tensor]], order: Tensor) -> Tensor:
        logits = [self.model(**chunk) for chunk in chunks]
        return (torch.cat(logits) if len(logits) > 1 else logits[0])[order]


def prepare_micro_batch(
    model: TrainableModel,
    groups: GroupSet,
    ids: np.ndarray,
    *,
    chunk_tokens: int | None = None,
    pin: bool = False,
) -> MicroBatch:
    """CPU tensors for the groups ``ids`` (page-locked when ``pin``, for async copies).

    With ``chunk_tokens`` the pairs are sorted by length and cut into chunks of at most that
    many padded tokens, so short pairs are not padded to the longest pair of the micro-batch.
    """
    queries, docs, rows, cols = groups.pairs(ids)
    if chunk_tokens is None:
        parts = [np.arange(len(rows))]
    else:
        parts = plan_batches(model.pair_lengths(queries, docs), chunk_tokens)
    position = np.empty(len(rows), dtype=np.int64)
    position[np.concatenate(parts)] = np.arange(len(rows))
    batch = MicroBatch(
        [model.collate(queries[part], docs[part]) for part in parts],
        torch.from_numpy(position),
        torch.from_numpy(rows),
        torch.from_numpy(cols),
        torch.from_numpy(groups.labels[ids]),
        torch.from_numpy(groups.mask(ids)),
    )
    return batch.pin_memory() if pin else batch


class StepLoader:
    """Iterates the micro-batches of ``batches[start:]``, preparing the next step in advance.

    ``split`` maps a global batch to this rank's micro-batches (see
    :func:`~crossrank.training.data.split_micro_batches`).
    """

    def __init__(
        self,
        model: TrainableModel,
        groups: GroupSet,
        batches: Sequence[np.ndarray],
        *,
        start: int,
        split: Callable[[np.ndarray], list[np.ndarray]],
        chunk_tokens: int | None = None,
        pin: bool = False,
    ) -> None:
        self._model = model
        self._groups = groups
        self._batches = batches
        self._start = start
        self._split = split
        self._chunk_tokens = chunk_tokens
        self._pin = pin

    def _prepare(self, index: int) -> list[MicroBatch]:
        return [
            prepare_micro_batch(
                self._model, self._groups, ids, chunk_tokens=self._chunk_tokens, pin=self._pin
            )
            for ids in self._split(self._batches[index])
        ]

    def __iter__(self) -> Iterator[list[MicroBatch]]:
        if self._start >= len(self._batches):
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossrank-collate") as pool:
            pending: Future[list[MicroBatch]] = pool.submit(self._prepare, self._start)
            for index in range(self._start + 1, len(self._batches) + 1):
                ready = pending.result()
                if index < len(self._batches):
                    pending = pool.submit(self._prepare, index)
                yield ready
