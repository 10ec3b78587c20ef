"""What the trainer plans, tracks, reports and returns.

:class:`TrainState` is everything a checkpoint must restore besides tensors: the stage, epoch
and number of batches already consumed in the epoch (the batch order itself is recomputed
from the seed), step counters, early-stopping bookkeeping and the metrics history.

Example:
    >>> state = TrainState(stage=0, epoch=2, batch=5, stage_step=40)
    >>> state.next_stage()
    >>> (state.stage, state.epoch, state.batch, state.stage_step)
    (1, 0, 0, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from crossrank.training.config import StageConfig
from crossrank.training.data import GroupSet

__all__ = ["StageEvent", "StagePlan", "TrainResult", "TrainState"]


@dataclass(frozen=True)
class StagePlan:
    """A stage's config, its groups and each group's length (tokens, for bucketing)."""

    config: StageConfig
    groups: GroupSet
    lengths: np.ndarray

    @property
    def batches_per_epoch(self) -> int:
        return len(self.groups) // self.config.groups_per_step

    @property
    def total_steps(self) -> int:
        steps = self.config.epochs * self.batches_per_epoch
        return min(steps, self.config.max_steps) if self.config.max_steps else steps


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint (JSON)."""

    stage: int = 0
    epoch: int = 0
    batch: int = 0  # batches of the current epoch already consumed
    stage_step: int = 0
    global_step: int = 0
    pairs: int = 0
    train_seconds: float = 0.0
    best: dict[str, Any] | None = None
    bad_evals: int = 0
    last_eval_step: int = -1
    stopped_early: list[str] = field(default_factory=list)
    time_limit_reached: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    top: list[dict[str, Any]] = field(default_factory=list)  # output.average_best's entries

    def next_stage(self) -> None:
        """Move to the start of the next stage (patience restarts with it)."""
        self.stage += 1
        self.epoch = self.batch = self.stage_step = self.bad_evals = 0


@dataclass(frozen=True)
class StageEvent:
    """Passed to callbacks after every optimiser step."""

    stage: str
    stage_step: int
    global_step: int


@dataclass(frozen=True)
class TrainResult:
    """Output directory, the final.json summary, the final state and the trained module."""

    out_dir: Path
    summary: dict[str, Any]
    state: TrainState
    model: nn.Module
