"""Optimiser parameter groups (weight decay, layer-wise LR decay) and the LR schedule.

Layer-wise learning-rate decay (LLRD) gives the top of the network (head, pooler) the base
rate and each layer below it ``llrd`` times the rate of the layer above; embeddings sit below
layer 0. Biases and normalisation weights (every 1-D parameter) get no weight decay.

Example:
    >>> layer_depth("bert.encoder.layer.3.output.dense.weight", num_layers=6)
    4
    >>> layer_depth("classifier.weight", num_layers=6), layer_depth("bert.embeddings.x", 6)
    (7, 0)
    >>> f = WarmupDecay(total_steps=10, warmup_steps=2, kind="linear")
    >>> [round(f(s), 3) for s in (0, 1, 2, 6, 10)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from crossrank.errors import ConfigError

__all__ = ["WarmupDecay", "build_optimizer", "build_scheduler", "layer_depth", "param_groups"]

_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def layer_depth(name: str, num_layers: int) -> int:
    """0 for embeddings, ``i + 1`` for encoder layer ``i``, ``num_layers + 1`` for the rest."""
    match = _LAYER.search(name)
    if match:
        return int(match.group(1)) + 1
    if "embeddings" in name.split("."):
        return 0
    return num_layers + 1


def _num_layers(names: list[str]) -> int:
    found = [int(m.group(1)) for n in names if (m := _LAYER.search(n))]
    return max(found) + 1 if found else 0


def param_groups(
    module: nn.Module, *, lr: float, weight_decay: float, llrd: float
) -> list[dict[str, Any]]:
    """AdamW parameter groups by (depth, decay); empty groups are left out."""
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    num_layers = _num_layers([n for n, _ in named])
    top = num_layers + 1
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in named:
        depth = layer_depth(name, num_layers)
        decay = param.ndim >= 2
        key = (depth, decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": lr * llrd ** (top - depth),
                "weight_decay": weight_decay if decay else 0.0,
            }
        groups[key]["params"].append(param)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(
    module: nn.Module, *, lr: float, weight_decay: float, llrd: float, fused: bool = False
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (``fused``: one kernel per parameter group step)."""
    groups = param_groups(module, lr=lr, weight_decay=weight_decay, llrd=llrd)
    if not groups:
        raise ConfigError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=lr, fused=fused or None)


@dataclass
class WarmupDecay:
    """LR multiplier: linear warmup to 1, then linear or cosine decay to 0 (or constant)."""

    total_steps: int
    warmup_steps: int
    kind: str

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        if self.kind == "constant":
            return 1.0
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, progress)
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_ratio: float, kind: str
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step LambdaLR with ``ceil(warmup_ratio * total_steps)`` warmup steps."""
    if kind not in ("linear", "cosine", "constant"):
        raise ConfigError(f"schedule must be linear, cosine or constant, got {kind!r}")
    warmup = math.ceil(warmup_ratio * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupDecay(total_steps, warmup, kind))
