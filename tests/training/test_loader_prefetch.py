"""The background prefetch of training inputs: order, bounded look-ahead, errors, no leaked
threads, and bit-identical weights with and without it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.training.config import TrainConfig
from crossrank.training.data import GroupSet
from crossrank.training.loader import Prefetcher, StepLoader
from crossrank.training.pipeline import train


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("crossrank-")]


def test_prefetcher_keeps_order_and_stays_at_most_depth_ahead() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10):
            produced.append(i)
            yield i

    with Prefetcher(items(), depth=2) as stream:
        time.sleep(0.2)  # let the producer run as far as the queue allows
        # Two items queued plus one produced and waiting for a free slot.
        assert len(produced) <= 3
        assert list(stream) == list(range(10))
    assert not _prefetch_threads()


def test_prefetcher_reraises_the_producers_error_in_place() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("bad batch 2")

    got = []
    with Prefetcher(items(), depth=2) as stream, pytest.raises(ValueError, match="bad batch 2"):
        for item in stream:
            got.append(item)
    assert got == [1]
    assert not _prefetch_threads()


def test_prefetcher_stopped_early_joins_its_thread() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    with Prefetcher(endless(), depth=2, name="crossrank-test") as stream:
        assert next(stream) == 0 and next(stream) == 1
        assert _prefetch_threads()
    assert not _prefetch_threads()


@pytest.mark.parametrize("depth", [0, -1, 1.5, True])
def test_prefetcher_rejects_bad_depth(depth: object) -> None:
    with pytest.raises(ConfigError, match="prefetch depth"):
        Prefetcher(iter([]), depth)  # type: ignore[arg-type]


class _Collate:
    """Minimal TrainableModel stand-in: one tensor of word counts per pair."""

    def collate(self, queries: object, docs: object) -> dict[str, torch.Tensor]:
        return {"n": torch.tensor([len(str(d).split()) for d in docs])}  # type: ignore[attr-defined]

    def pair_lengths(self, queries: object, docs: object) -> np.ndarray:
        return np.array([len(str(d).split()) for d in docs])  # type: ignore[attr-defined]


def _loader(prefetch: int, start: int = 0) -> StepLoader:
    groups = GroupSet.build([f"q{i}" for i in range(8)],
                            [[f"a {'b ' * i}", "c"] for i in range(8)], [[1, 0]] * 8)  # fmt: skip
    batches = [np.array([i, i + 4]) for i in range(4)]
    return StepLoader(_Collate(), groups, batches, start=start,  # type: ignore[arg-type]
                      split=lambda b: [b[:1], b[1:]], chunk_tokens=4, prefetch=prefetch)  # fmt: skip


def test_step_loader_gives_the_same_batches_with_and_without_prefetch() -> None:
    def flat(loader: StepLoader) -> list[list[int]]:
        return [[v for chunk in m.chunks for v in chunk["n"].tolist()] + m.order.tolist()
                for step in loader for m in step]  # fmt: skip

    assert flat(_loader(0, start=1)) == flat(_loader(2, start=1)) == flat(_loader(1, start=1))
    assert len(flat(_loader(2, start=1))) == 6  # 3 steps x 2 micro-batches
    steps = iter(_loader(2))
    next(steps)
    steps.close()  # what the trainer does when a stage stops early
    assert not _prefetch_threads()
    with pytest.raises(ConfigError, match="prefetch"):
        _loader(-1)


def test_training_with_and_without_prefetch_gives_identical_weights(
    tmp_path: Path, tiny_config: Callable[..., TrainConfig]
) -> None:
    config = tiny_config(epochs=1, final_weights="last")
    runs = {p: train(config, out_dir=tmp_path / f"p{p}", quiet=True, prefetch=p) for p in (0, 2)}
    assert not _prefetch_threads()
    plain, ahead = (dict(runs[p].model.state_dict()) for p in (0, 2))
    assert runs[0].state.global_step == runs[2].state.global_step == 14
    different = [k for k in plain if not torch.equal(plain[k], ahead[k])]
    assert not different, different
    # Both runs really trained, and logged the same losses step for step.
    losses = [[e["loss"] for e in runs[p].state.history if e["event"] == "train"] for p in (0, 2)]
    assert losses[0] == losses[1] and len(set(losses[0])) > 1
