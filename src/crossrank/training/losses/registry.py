"""Named losses, a frozen ``LossConfig`` a TOML recipe can name, and their weighted sum.

Every registered loss is called on a :class:`LossBatch` (logits, labels, mask, teacher
scores), so losses with different inputs can be combined into one multi-objective loss.

Example:
    >>> import torch
    >>> loss = build_loss([LossConfig("softmax_ce"), LossConfig("ranknet", weight=0.5)])
    >>> batch = LossBatch(torch.tensor([[2.0, 0.0]]), labels=torch.tensor([[1, 0]]))
    >>> {name: round(value.item(), 4) for name, value in loss.breakdown(batch).items()}
    {'softmax_ce': 0.1269, 'ranknet': 0.0635}
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType

from torch import Tensor

from crossrank.errors import ConfigError
from crossrank.training.losses._checks import (
    check_non_negative,
    check_positive,
    check_unit_interval,
)
from crossrank.training.losses.contrastive import infonce
from crossrank.training.losses.distillation import kl_distillation, margin_mse
from crossrank.training.losses.listwise import LAMBDA_WEIGHTINGS, lambdaloss, listnet, softmax_ce
from crossrank.training.losses.pairwise import hinge, ranknet
from crossrank.training.losses.pointwise import bce, graded_ce, mse

__all__ = ["LOSSES", "CombinedLoss", "LossBatch", "LossConfig", "build_loss", "make_loss"]

ParamValue = float | int | str | bool


@dataclass(frozen=True, slots=True)
class LossBatch:
    """What a loss may read: model logits, labels/relevance, padding mask, teacher scores."""

    logits: Tensor
    labels: Tensor | None = None
    mask: Tensor | None = None
    teacher: Tensor | None = None


BatchLoss = Callable[[LossBatch], Tensor]
_Inputs = tuple[str, ...]

# name -> (function, the LossBatch fields passed positionally after logits).
LOSSES: Mapping[str, tuple[Callable[..., Tensor], _Inputs]] = MappingProxyType(
    {
        "bce": (bce, ("labels", "mask")),
        "graded_ce": (graded_ce, ("labels", "mask")),
        "mse": (mse, ("labels", "mask")),
        "ranknet": (ranknet, ("labels", "mask")),
        "hinge": (hinge, ("labels", "mask")),
        "softmax_ce": (softmax_ce, ("labels", "mask")),
        "listnet": (listnet, ("labels", "mask")),
        "lambdaloss": (lambdaloss, ("labels", "mask")),
        "infonce": (infonce, ("mask",)),
        "margin_mse": (margin_mse, ("teacher", "mask")),
        "kl": (kl_distillation, ("teacher", "mask")),
    }
)


def _check_weighting(loss: str, name: str, value: ParamValue) -> None:
    if value not in LAMBDA_WEIGHTINGS:
        raise ConfigError(f"{loss}: {name} must be one of {LAMBDA_WEIGHTINGS}, got {value!r}")


def _check_bool(loss: str, name: str, value: ParamValue) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{loss}: {name} must be true or false, got {value!r}")


# Hyperparameter validators, so a recipe fails when it is loaded, not at the first step.
_PARAM_CHECKS: Mapping[str, Callable[[str, str, ParamValue], None]] = MappingProxyType(
    {
        "label_smoothing": check_unit_interval,
        "sigma": check_positive,
        "temperature": check_positive,
        "margin": check_non_negative,
        "mu": check_non_negative,
        "weighting": _check_weighting,
        "in_batch": _check_bool,
    }
)


def _keyword_params(fn: Callable[..., Tensor]) -> frozenset[str]:
    params = inspect.signature(fn).parameters.values()
    return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _check_params(name: str, params: Mapping[str, ParamValue]) -> None:
    allowed = _keyword_params(LOSSES[name][0])
    for key, value in params.items():
        if key not in allowed:
            raise ConfigError(
                f"loss {name!r} has no parameter {key!r}; allowed: {sorted(allowed) or 'none'}"
            )
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if key not in ("weighting", "in_batch") and not is_number:
            raise ConfigError(f"{name}: {key} must be a number, got {value!r}")
        _PARAM_CHECKS[key](name, key, value)


@dataclass(frozen=True)
class LossConfig:
    """One named objective of a recipe: ``name``, its ``weight`` in the sum, its hyperparameters.

    >>> LossConfig("kl", weight=0.5, params={"temperature": 2.0}).to_dict()
    {'name': 'kl', 'weight': 0.5, 'params': {'temperature': 2.0}}
    """

    name: str
    weight: float = 1.0
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in LOSSES:
            raise ConfigError(f"unknown loss {self.name!r}; known: {sorted(LOSSES)}")
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ConfigError(f"loss {self.name!r}: weight must be a number, got {weight!r}")
        if not (math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"loss {self.name!r}: weight must be finite and >= 0, got {weight!r}")
        if not isinstance(self.params, Mapping):
            raise ConfigError(f"loss {self.name!r}: params must be a table, got {self.params!r}")
        _check_params(self.name, self.params)
        # A read-only copy: later changes to the caller's dict cannot alter the config.
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __hash__(self) -> int:
        return hash((self.name, self.weight, tuple(sorted(self.params.items()))))

    def to_dict(self) -> dict[str, object]:
        """Plain dict for TOML/JSON; :meth:`from_dict` reads it back."""
        return {"name": self.name, "weight": self.weight, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LossConfig:
        """Build from a recipe table such as ``{name = "kl", weight = 0.5, params = {...}}``."""
        unknown = set(data) - {"name", "weight", "params"}
        if unknown:
            raise ConfigError(f"loss table has unknown keys {sorted(unknown)}")
        if not isinstance(data.get("name"), str):
            raise ConfigError(f"loss table needs a string 'name', got {data.get('name')!r}")
        weight = data.get("weight", 1.0)
        params = data.get("params", {})
        return cls(data["name"], weight, params)  # type: ignore[arg-type]


def make_loss(config: LossConfig) -> BatchLoss:
    """The unweighted loss a config names, as a function of a :class:`LossBatch`."""
    fn, inputs = LOSSES[config.name]
    bound = partial(fn, **config.params)

    def loss(batch: LossBatch) -> Tensor:
        args = []
        for field_name in inputs:
            value = getattr(batch, field_name)
            if value is None and field_name != "mask":
                raise ConfigError(f"loss {config.name!r} needs batch.{field_name}, which is None")
            args.append(value)
        return bound(batch.logits, *args)

    return loss


class CombinedLoss:
    """Weighted sum of named losses (multi-task / multi-objective training).

    ``breakdown`` returns each weighted term, so a trainer can log them and sum them;
    calling the object returns the total.
    """

    def __init__(self, terms: Sequence[tuple[str, float, BatchLoss]]) -> None:
        if not terms:
            raise ConfigError("CombinedLoss needs at least one term")
        names = [name for name, _, _ in terms]
        if len(set(names)) != len(names):
            raise ConfigError(f"CombinedLoss term names must be unique, got {names}")
        for name, weight, _ in terms:
            if isinstance(weight, bool) or not (math.isfinite(weight) and weight >= 0):
                raise ConfigError(
                    f"loss term {name!r}: weight must be finite and >= 0, got {weight!r}"
                )
        if not any(weight > 0 for _, weight, _ in terms):
            raise ConfigError(f"CombinedLoss needs a term with weight > 0, got {names}")
        self.terms: tuple[tuple[str, float, BatchLoss], ...] = tuple(terms)

    def breakdown(self, batch: LossBatch) -> dict[str, Tensor]:
        """Weighted value of every term with weight > 0, keyed by term name."""
        return {name: weight * fn(batch) for name, weight, fn in self.terms if weight > 0}

    def __call__(self, batch: LossBatch) -> Tensor:
        values = list(self.breakdown(batch).values())
        total = values[0]
        for value in values[1:]:
            total = total + value
        return total


def build_loss(configs: Sequence[LossConfig]) -> CombinedLoss:
    """Combine configs into one loss; a repeated name gets a ``#i`` suffix in the breakdown."""
    names = [config.name for config in configs]
    terms = []
    for i, config in enumerate(configs):
        label = config.name if names.count(config.name) == 1 else f"{config.name}#{i}"
        terms.append((label, float(config.weight), make_loss(config)))
    return CombinedLoss(terms)
