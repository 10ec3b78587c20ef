"""Model inputs of each training step, prepared ahead on a background thread.

Tokenising and assembling a step's (query, document) rows takes a few milliseconds of CPU;
on a GPU that time is hidden by preparing the next ``prefetch`` steps (a bounded queue) while
step ``i`` runs (the Rust tokenizer releases the GIL); on CUDA they are page-locked there, so
the trainer's ``non_blocking`` copies overlap the GPU. What is prepared depends only on the
batch, so the order of training, and therefore exact resume, is unaffected.

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

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import numpy as np
import torch
from torch import Tensor, nn

from crossrank.errors import ConfigError
from crossrank.inference.batching import plan_batches
from crossrank.training.data import GroupSet
from crossrank.training.trainable import TrainableModel

__all__ = [
    "ChunkedForward",
    "MicroBatch",
    "Prefetcher",
    "StepLoader",
    "prepare_micro_batch",
]

T = TypeVar("T")
# How often a producer blocked on a full queue checks whether the consumer has gone.
_POLL_S = 0.05


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


class Prefetcher(Generic[T]):
    """Iterates ``items`` on a background thread, at most ``depth`` items ahead.

    An exception raised while producing an item is re-raised by ``next`` in the consumer, at
    the position of that item. :meth:`close` (also on ``with`` exit) stops the producer and
    joins its thread, so a consumer that stops early leaks no thread; the thread is a daemon,
    so a process that is interrupted never waits for it at exit.

    >>> with Prefetcher(iter(range(5)), depth=2) as items:
    ...     list(items)
    [0, 1, 2, 3, 4]
    """

    def __init__(self, items: Iterator[T], depth: int, *, name: str = "crossrank-prefetch") -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"prefetch depth must be an integer >= 1, got {depth!r}")
        self._items = items
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(("item", item)):
                    return
        except BaseException as err:  # handed to the consumer, which re-raises it
            self._put(("error", err))
            return
        self._put(("done", None))

    def _put(self, entry: tuple[str, object]) -> bool:
        """Queue ``entry`` unless the consumer closed us first (then False)."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetcher[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            return cast(T, value)
        self._finished = True
        self._thread.join()
        if kind == "error":
            raise cast(BaseException, value)
        raise StopIteration

    def close(self) -> None:
        """Stop the producer (it finishes the item in hand) and join its thread."""
        self._stop.set()
        self._finished = True
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a producer on a full queue
                self._queue.get(timeout=_POLL_S)
        self._thread.join()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StepLoader:
    """Iterates the micro-batches of ``batches[start:]``, preparing ``prefetch`` steps ahead.

    ``split`` maps a global batch to this rank's micro-batches (see
    :func:`~crossrank.training.data.split_micro_batches`). ``prefetch`` = 0 prepares each step
    in the calling thread (same batches, same order: only the timing differs). Use it as a
    context manager, or close the iterator, when stopping before the end.
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
        prefetch: int = 2,
    ) -> None:
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ConfigError(f"prefetch must be an integer >= 0, got {prefetch!r}")
        self._model = model
        self._groups = groups
        self._batches = batches
        self._start = start
        self._split = split
        self._chunk_tokens = chunk_tokens
        self._pin = pin
        self._prefetch = prefetch

    def _prepare(self, index: int) -> list[MicroBatch]:
        return [
            prepare_micro_batch(
                self._model, self._groups, ids, chunk_tokens=self._chunk_tokens, pin=self._pin
            )
            for ids in self._split(self._batches[index])
        ]

    def _steps(self) -> Iterable[list[MicroBatch]]:
        return map(self._prepare, range(self._start, len(self._batches)))

    def __iter__(self) -> Iterator[list[MicroBatch]]:
        if self._prefetch == 0:
            yield from self._steps()
            return
        # The generator's close() (break, exception, garbage collection) runs the with-exit.
        with Prefetcher(iter(self._steps()), self._prefetch, name="crossrank-collate") as steps:
            yield from steps
