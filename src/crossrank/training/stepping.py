"""One stage's optimiser side and its optimiser step, as the trainer runs them.

:func:`open_session` builds a stage's AdamW (weight decay, layer-wise LR decay), schedule,
gradient scaler and combined loss; :func:`optimizer_step` runs one step over this rank's
micro-batches (autocast, DDP gradient sync on the last micro-batch only, clipping) and adds
its loss, pairs and time to a :class:`LogWindow`. :func:`check_plans` validates the stages'
shapes against the world size before any work starts.

Example:
    >>> session = open_session(model, plan, 0, device=torch.device("cpu"), precision="fp32")  # doctest: +SKIP
    >>> optimizer_step(session, wrapped, micro, model, window, device=device, precision="fp32", distributed=False)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from crossrank.errors import ConfigError
from crossrank.models.attention_kernels import attention_kernels
from crossrank.training.distributed import autocast
from crossrank.training.loader import MicroBatch
from crossrank.training.losses import CombinedLoss, LossBatch, build_loss
from crossrank.training.schedule import build_optimizer, build_scheduler
from crossrank.training.state import StagePlan

__all__ = ["LogWindow", "StageSession", "check_plans", "open_session", "optimizer_step"]


@dataclass
class StageSession:
    """The optimiser side of one stage."""

    index: int
    plan: StagePlan
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    loss: CombinedLoss


@dataclass
class LogWindow:
    """Accumulates steps between two log lines."""

    loss: Tensor | float = 0.0
    steps: int = 0
    pairs: int = 0
    seconds: float = 0.0


def check_plans(plans: Sequence[StagePlan], world_size: int) -> None:
    """Every stage splits evenly over the ranks and micro-batches and makes at least one step."""
    for plan in plans:
        parts = world_size * plan.config.grad_accum
        if plan.config.groups_per_step % parts:
            raise ConfigError(
                f"stage {plan.config.name!r}: groups_per_step ({plan.config.groups_per_step}) "
                f"must be divisible by {world_size} rank(s) x grad_accum "
                f"({plan.config.grad_accum})"
            )
        if plan.total_steps < 1:
            raise ConfigError(
                f"stage {plan.config.name!r}: {len(plan.groups)} groups make no step of "
                f"{plan.config.groups_per_step} groups"
            )


def open_session(
    model: nn.Module, plan: StagePlan, index: int, *, device: torch.device, precision: str
) -> StageSession:
    """A fresh optimiser, schedule, scaler and loss for stage ``index``."""
    stage = plan.config
    optimizer = build_optimizer(
        model,
        lr=stage.lr,
        weight_decay=stage.weight_decay,
        llrd=stage.llrd,
        # Fused on the CPU too: an AdamW step over MiniLM's 22M parameters takes 22 ms fused
        # against 98 ms with the default foreach path (benchmarks/cpu_dropout_micro.py).
        fused=device.type in ("cuda", "cpu"),
    )
    scheduler = build_scheduler(
        optimizer,
        total_steps=plan.total_steps,
        warmup_ratio=stage.warmup_ratio,
        kind=stage.schedule,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    return StageSession(index, plan, optimizer, scheduler, scaler, build_loss(stage.losses))


def optimizer_step(
    session: StageSession,
    wrapped: nn.Module,
    micro: Sequence[MicroBatch],
    model: nn.Module,
    window: LogWindow,
    *,
    device: torch.device,
    precision: str,
    distributed: bool,
    cudnn_attention: bool = False,
) -> None:
    """One optimiser step over this rank's micro-batches of a global batch.

    ``wrapped`` is the (possibly DDP-wrapped) chunked forward of ``model``; gradients are
    clipped on ``model``'s parameters. On CUDA, attention avoids cuDNN's kernel unless
    ``cudnn_attention`` (:mod:`~crossrank.models.attention_kernels`).
    """
    started = time.perf_counter()
    stage = session.plan.config
    wrapped.train()
    session.optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(micro):
        accumulating = distributed and i < len(micro) - 1
        # DDP all-reduces gradients only on the last micro-batch of the step.
        sync = wrapped.no_sync() if accumulating else contextlib.nullcontext()
        with sync:
            # The kernel choice covers the forward pass; backward follows what forward picked.
            with attention_kernels(device, cudnn=cudnn_attention):
                loss = micro_loss(session, wrapped, batch.to(device), device, precision)
            session.scaler.scale(loss / len(micro)).backward()
        window.loss = window.loss + loss.detach() / len(micro)
        window.pairs += batch.pairs
    session.scaler.unscale_(session.optimizer)
    if stage.clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), stage.clip)
    session.scaler.step(session.optimizer)
    session.scaler.update()
    session.scheduler.step()
    window.steps += 1
    window.seconds += time.perf_counter() - started


def micro_loss(
    session: StageSession,
    wrapped: nn.Module,
    batch: MicroBatch,
    device: torch.device,
    precision: str,
) -> Tensor:
    """Loss of one micro-batch of groups (its tensors already on the device)."""
    with autocast(device, precision):
        flat = wrapped(batch.chunks, batch.order)
    shape = (len(batch.labels), session.plan.groups.group_size)
    logits = torch.zeros(shape, device=device).index_put((batch.rows, batch.cols), flat.float())
    return session.loss(LossBatch(logits, labels=batch.labels, mask=batch.mask))
