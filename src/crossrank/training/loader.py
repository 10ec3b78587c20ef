"""Model inputs of each training step, prepared one step ahead on a background thread.

Tokenising and assembling a step's (query, document) rows takes a few milliseconds of CPU;
on a GPU that time is hidden by preparing step ``i + 1`` while step ``i`` runs (the Rust
tokenizer releases the GIL). What is prepared depends only on the batch, so the order of
training, and therefore exact resume, is unaffected.

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
from torch import Tensor

from crossrank.training.data import GroupSet
from crossrank.training.trainable import TrainableModel

__all__ = ["MicroBatch", "StepLoader", "prepare_micro_batch"]


@dataclass(frozen=True)
class MicroBatch:
    """Collated inputs of a micro-batch of groups and where each pair's logit goes."""

    inputs: dict[str, Tensor]
    rows: Tensor  # group (row) of each pair within the micro-batch
    cols: Tensor  # member (column) of each pair within its group
    labels: Tensor
    mask: Tensor

    @property
    def pairs(self) -> int:
        return len(self.rows)

    def to(self, device: torch.device) -> MicroBatch:
        def move(t: Tensor) -> Tensor:
            return t.to(device, non_blocking=True)

        return MicroBatch(
            {k: move(v) for k, v in self.inputs.items()},
            move(self.rows),
            move(self.cols),
            move(self.labels),
            move(self.mask),
        )


def prepare_micro_batch(
    model: TrainableModel, groups: GroupSet, ids: np.ndarray, *, pin: bool = False
) -> MicroBatch:
    """CPU tensors for the groups ``ids`` (page-locked when ``pin``, for async copies)."""
    queries, docs, rows, cols = groups.pairs(ids)
    batch = MicroBatch(
        model.collate(queries, docs),
        torch.from_numpy(rows),
        torch.from_numpy(cols),
        torch.from_numpy(groups.labels[ids]),
        torch.from_numpy(groups.mask(ids)),
    )
    if not pin:
        return batch
    return MicroBatch(
        {k: v.pin_memory() for k, v in batch.inputs.items()},
        batch.rows.pin_memory(),
        batch.cols.pin_memory(),
        batch.labels.pin_memory(),
        batch.mask.pin_memory(),
    )


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
        pin: bool = False,
    ) -> None:
        self._model = model
        self._groups = groups
        self._batches = batches
        self._start = start
        self._split = split
        self._pin = pin

    def _prepare(self, index: int) -> list[MicroBatch]:
        return [
            prepare_micro_batch(self._model, self._groups, ids, pin=self._pin)
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
