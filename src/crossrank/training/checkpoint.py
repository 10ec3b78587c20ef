"""Training checkpoints for exact resume: weights, optimiser, schedule, scaler, position, RNGs.

A checkpoint is a directory written atomically (a crash mid-write leaves the previous one
intact): ``model.safetensors`` (the trained module), ``optimizer.pt`` / ``scheduler.pt`` /
``scaler.pt`` (tensors and plain values only, read back with ``weights_only=True``),
``rng.pt`` (the python, numpy and torch generator states of every rank) and ``state.json``
(where training stands: stage, epoch, batches consumed in the epoch, steps, early-stopping
bookkeeping and the metrics history).

Example:
    >>> save_checkpoint(path, module=m, optimizer=o, scheduler=s, scaler=g,  # doctest: +SKIP
    ...                 state={"global_step": 10}, rng=[capture_rng()])
    >>> read_checkpoint(path).state["global_step"]  # doctest: +SKIP
    10
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from crossrank.data.atomic import atomic_dir
from crossrank.errors import ConfigError, DataFormatError, MissingDataError
from crossrank.training.config import TrainConfig
from crossrank.training.state import TrainState

__all__ = [
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "capture_rng",
    "read_checkpoint",
    "recipe_fingerprint",
    "restore_rng",
    "resume_state",
    "save_checkpoint",
    "save_weights",
]

CHECKPOINT_VERSION = 1
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.json"
RNG_FILE = "rng.pt"
_TORCH_FILES = ("optimizer", "scheduler", "scaler")


def capture_rng() -> dict[str, Any]:
    """This process's generator states, as tensors and plain values (no pickled objects)."""
    version, mt_state, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "state": torch.tensor(mt_state), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": nps["key"].numpy().astype(np.uint32), "pos": nps["pos"]},
            "has_gauss": nps["has_gauss"],
            "gauss": nps["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    directory: str | Path,
    *,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    state: Mapping[str, Any],
    rng: Sequence[Mapping[str, Any]],
) -> None:
    """Write a complete checkpoint atomically (``rng`` holds one entry per rank)."""
    with atomic_dir(directory) as tmp:
        save_model(module, str(tmp / MODEL_FILE))
        parts = {"optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}
        for name, obj in parts.items():
            torch.save(obj.state_dict(), tmp / f"{name}.pt")
        torch.save(list(rng), tmp / RNG_FILE)
        payload = {"checkpoint_version": CHECKPOINT_VERSION, "world_size": len(rng), **state}
        (tmp / STATE_FILE).write_text(json.dumps(payload, indent=1), encoding="utf-8")


def save_weights(directory: str | Path, module: nn.Module, meta: Mapping[str, Any]) -> None:
    """Weights only (e.g. the best dev checkpoint), with a JSON sidecar, atomically."""
    with atomic_dir(directory) as tmp:
        save_model(module, str(tmp / MODEL_FILE))
        (tmp / STATE_FILE).write_text(json.dumps(dict(meta), indent=1), encoding="utf-8")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint directory read back; load its parts into freshly built objects."""

    path: Path
    state: dict[str, Any]

    def load_model(self, module: nn.Module) -> None:
        missing, unexpected = load_model(module, str(self.path / MODEL_FILE), strict=False)
        if missing or unexpected:
            raise DataFormatError(
                self.path / MODEL_FILE,
                None,
                f"weights do not fit the model: missing {sorted(missing)[:3]}, "
                f"unexpected {sorted(unexpected)[:3]}",
            )

    def load_training(
        self,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
    ) -> None:
        for name, obj in zip(_TORCH_FILES, (optimizer, scheduler, scaler), strict=True):
            obj.load_state_dict(self._torch(f"{name}.pt"))

    def rng(self, rank: int, world_size: int) -> dict[str, Any]:
        states = self._torch(RNG_FILE)
        if len(states) != world_size:
            raise ConfigError(
                f"{self.path} was written by {len(states)} process(es); resume it with the "
                f"same number, not {world_size}"
            )
        return states[rank]

    def _torch(self, name: str) -> Any:
        try:
            return torch.load(self.path / name, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as err:
            raise DataFormatError(self.path / name, None, f"unreadable: {err}") from err


def read_checkpoint(directory: str | Path) -> Checkpoint:
    """Open a checkpoint written by :func:`save_checkpoint` or :func:`save_weights`."""
    path = Path(directory)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise MissingDataError(f"no checkpoint at {path} (missing {STATE_FILE})")
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataFormatError(state_file, None, f"unreadable JSON: {err}") from err
    version = state.get("checkpoint_version", CHECKPOINT_VERSION)
    if version != CHECKPOINT_VERSION:
        raise DataFormatError(state_file, None, f"checkpoint_version {version!r} not supported")
    return Checkpoint(path, state)


def resume_state(directory: Path, config: TrainConfig) -> tuple[TrainState, Checkpoint]:
    """The training state saved in the checkpoint at ``directory``, and the checkpoint.

    Refuses a checkpoint written with another recipe (``[output]`` aside).
    """
    checkpoint = read_checkpoint(directory)
    if checkpoint.state.get("recipe") != recipe_fingerprint(config):
        raise ConfigError(
            f"{directory} was written with a different recipe; resume with the "
            "same config (see its state.json) or train into a new --out directory"
        )
    names = {f.name for f in dataclasses.fields(TrainState)}
    state = TrainState(**{k: v for k, v in checkpoint.state.items() if k in names})
    return state, checkpoint


def recipe_fingerprint(config: TrainConfig) -> dict[str, Any]:
    """The recipe minus [output] (logging/checkpoint cadence may change across a resume)."""
    return {k: v for k, v in config.to_dict().items() if k != "output"}
