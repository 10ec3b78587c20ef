"""Weight averaging of the best dev checkpoints (a uniform "model soup" of one run).

Fine-tuning on ~700 queries gives a noisy dev curve; averaging the weights of the few best
evaluations often scores at or above the best single one. With ``output.average_best = k``
(k >= 2) the trainer keeps the weights of the ``k`` best dev evaluations
(:func:`update_top`), and at the end evaluates their average (:func:`average_weights`); the
average becomes the final weights only when it beats the best single evaluation on dev.

Example:
    >>> top, dropped = update_top([], {"step": 10, "model": 0.5}, k=2)
    >>> top, dropped = update_top(top, {"step": 20, "model": 0.7}, k=2)
    >>> top, dropped = update_top(top, {"step": 30, "model": 0.6}, k=2)
    >>> [e["step"] for e in top], dropped["step"]
    ([20, 30], 10)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from crossrank.data.atomic import atomic_dir
from crossrank.errors import DataFormatError, MissingDataError
from crossrank.training.checkpoint import MODEL_FILE, STATE_FILE, read_checkpoint, save_weights

__all__ = ["average_weights", "keep_if_top", "try_average", "update_top"]

Entry = Mapping[str, Any]


def update_top(
    top: Sequence[Entry], entry: Entry, *, k: int
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """``top`` with ``entry`` ranked in (best ``model`` score first, earlier step on ties).

    Returns the new list (at most ``k`` entries) and the entry that fell out: ``entry``
    itself when it does not make the cut, None when nothing fell out.
    """
    ranked = sorted([*map(dict, top), dict(entry)], key=lambda e: (-e["model"], e["step"]))
    kept, dropped = ranked[:k], ranked[k:]
    return kept, (dropped[0] if dropped else None)


def average_weights(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the floating-point tensors of safetensors ``files``.

    Non-float tensors (integer buffers such as position ids) are taken from the first file
    and must be equal in all of them; every file must hold the same names and shapes.
    """
    if not files:
        raise MissingDataError("average_weights needs at least one weight file")
    first = load_file(str(files[0]))
    sums = {n: t.double() if t.is_floating_point() else t for n, t in first.items()}
    for path in files[1:]:
        tensors = load_file(str(path))
        if tensors.keys() != sums.keys():
            raise DataFormatError(Path(path), None, f"tensor names differ from {files[0]}")
        for name, tensor in tensors.items():
            if tensor.shape != sums[name].shape:
                raise DataFormatError(
                    Path(path), None, f"{name}: shape {tuple(tensor.shape)} differs"
                )
            if tensor.is_floating_point():
                sums[name] += tensor.double()
            elif not torch.equal(tensor, sums[name]):
                raise DataFormatError(Path(path), None, f"{name}: integer buffer differs")
    count = len(files)
    return {
        n: (t / count).to(first[n].dtype) if t.is_floating_point() else t for n, t in sums.items()
    }


def keep_if_top(
    top: Sequence[Entry], entry: Entry, *, k: int, root: Path, model: nn.Module
) -> list[dict[str, Any]]:
    """Rank ``entry`` into ``top``; save ``model``'s weights under ``root`` if it made the cut.

    The new weights are written before the dropped entry's are removed, so a crash leaves
    every listed entry's weights on disk.
    """
    kept, dropped = update_top(top, entry, k=k)
    if dropped is None or dropped["step"] != entry["step"]:
        save_weights(root / f"step-{entry['step']}", model, entry)
    if dropped is not None and dropped["step"] != entry["step"]:
        shutil.rmtree(root / f"step-{dropped['step']}", ignore_errors=True)
    return kept


def try_average(
    model: nn.Module,
    top: Sequence[Entry],
    root: Path,
    evaluate: Callable[[nn.Module], Any],
) -> tuple[dict[str, Any], bool]:
    """Load the average of ``top``'s weights into ``model`` and evaluate it on dev.

    Returns the dev scores (with the averaged steps) and whether the average beats the best
    single entry; when it does not, ``model`` still holds the average: the caller reloads.
    """
    files = [root / f"step-{e['step']}" / MODEL_FILE for e in top]
    with atomic_dir(root / "average") as tmp:
        save_file(average_weights(files), str(tmp / MODEL_FILE))
        (tmp / STATE_FILE).write_text(json.dumps({"steps": [e["step"] for e in top]}), "utf-8")
    read_checkpoint(root / "average").load_model(model)
    scores = evaluate(model).to_dict()
    best = max(e["model"] for e in top)
    result = {"event": "average", "steps": [e["step"] for e in top], **scores}
    return result, scores["model"] > best
