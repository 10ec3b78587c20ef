"""Averaging the best dev checkpoints: ranking the kept entries, the mean, and the trainer's use."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from crossrank.errors import ConfigError, DataFormatError, MissingDataError
from crossrank.training.averaging import average_weights, keep_if_top, try_average, update_top
from crossrank.training.config import TrainConfig
from crossrank.training.pipeline import train


def test_update_top_keeps_the_k_best_and_reports_the_dropped_one() -> None:
    top, dropped = update_top([], {"step": 4, "model": 0.3}, k=2)
    assert top == [{"step": 4, "model": 0.3}] and dropped is None
    top, dropped = update_top(top, {"step": 8, "model": 0.5}, k=2)
    assert [e["step"] for e in top] == [8, 4] and dropped is None
    top, dropped = update_top(top, {"step": 12, "model": 0.1}, k=2)
    assert [e["step"] for e in top] == [8, 4] and dropped == {"step": 12, "model": 0.1}
    top, dropped = update_top(top, {"step": 16, "model": 0.5}, k=2)  # tie: earlier step first
    assert [e["step"] for e in top] == [8, 16] and dropped == {"step": 4, "model": 0.3}


def _write(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    save_file(tensors, str(path))
    return path


def test_average_weights_is_the_elementwise_mean(tmp_path: Path) -> None:
    ids = torch.arange(4)
    a = _write(tmp_path / "a", {"w": torch.tensor([1.0, 2.0]), "ids": ids})
    b = _write(tmp_path / "b", {"w": torch.tensor([3.0, 6.0]), "ids": ids})
    c = _write(tmp_path / "c", {"w": torch.tensor([2.0, 1.0]), "ids": ids})
    mean = average_weights([a, b, c])
    torch.testing.assert_close(mean["w"], torch.tensor([2.0, 3.0]))
    assert mean["w"].dtype == torch.float32 and torch.equal(mean["ids"], ids)
    half = _write(tmp_path / "h", {"w": torch.tensor([1.0, 2.0], dtype=torch.float16)})
    half2 = _write(tmp_path / "h2", {"w": torch.tensor([2.0, 2.0], dtype=torch.float16)})
    assert average_weights([half, half2])["w"].dtype == torch.float16


def test_average_weights_refuses_mismatched_files(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", {"w": torch.zeros(2), "ids": torch.arange(2)})
    with pytest.raises(MissingDataError):
        average_weights([])
    other_name = _write(tmp_path / "b", {"v": torch.zeros(2), "ids": torch.arange(2)})
    with pytest.raises(DataFormatError, match="names differ"):
        average_weights([a, other_name])
    other_shape = _write(tmp_path / "c", {"w": torch.zeros(3), "ids": torch.arange(2)})
    with pytest.raises(DataFormatError, match="shape"):
        average_weights([a, other_shape])
    other_ids = _write(tmp_path / "d", {"w": torch.zeros(2), "ids": torch.arange(1, 3)})
    with pytest.raises(DataFormatError, match="integer buffer"):
        average_weights([a, other_ids])


@dataclass(frozen=True)
class _Scores:
    model: float

    def to_dict(self) -> dict[str, float]:
        return {"model": self.model}


def test_keep_if_top_saves_and_removes_weights_and_try_average_reports(tmp_path: Path) -> None:
    module = torch.nn.Linear(2, 1)
    top: list[dict] = []
    for step, score, value in ((1, 0.2, 1.0), (2, 0.4, 3.0), (3, 0.1, 9.0), (4, 0.3, 5.0)):
        with torch.no_grad():
            module.weight.fill_(value)
        top = keep_if_top(top, {"step": step, "model": score}, k=2, root=tmp_path, model=module)
    assert [e["step"] for e in top] == [2, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-2", "step-4"]

    scores, better = try_average(module, top, tmp_path, lambda m: _Scores(0.45))
    torch.testing.assert_close(module.weight, torch.full((1, 2), 4.0))  # mean of 3 and 5
    assert better and scores == {"event": "average", "steps": [2, 4], "model": 0.45}
    _, better = try_average(module, top, tmp_path, lambda m: _Scores(0.4))  # ties the best
    assert not better


def test_the_trainer_ends_with_the_average_only_when_it_wins_on_dev(
    tmp_path: Path, tiny_config: Callable[..., TrainConfig]
) -> None:
    config = tiny_config()
    output = type(config.output)(average_best=3, keep_checkpoints=True)
    out = tmp_path / "run"
    result = train(config.replace(output=output), out_dir=out, quiet=True)

    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in events if e["event"] == "eval"]
    ranked = sorted(evals, key=lambda e: (-e["model"], e["step"]))[:3]
    average = result.summary["average"]
    assert average["steps"] == [e["step"] for e in ranked]
    assert [e for e in events if e["event"] == "average"] == [
        {k: v for k, v in average.items() if k != "kept"}
    ]
    assert average["kept"] == (average["model"] > ranked[0]["model"])
    top = out / "checkpoints" / "top"
    expected = (
        average_weights([top / f"step-{s}" / "model.safetensors" for s in average["steps"]])
        if average["kept"]
        else load_file(str(out / "checkpoints" / "best" / "model.safetensors"))
    )
    final = {}
    for shard in out.glob("model*.safetensors"):
        final.update(load_file(str(shard)))
    for name, tensor in expected.items():
        key = name.removeprefix("encoder.")
        torch.testing.assert_close(final[key], tensor, msg=name)
    assert result.summary["weights"] == ("average_of_best" if average["kept"] else "best_dev")


def test_average_best_must_be_positive(tiny_config: Callable[..., TrainConfig]) -> None:
    config = tiny_config()
    with pytest.raises(ConfigError, match="average_best"):
        type(config.output)(average_best=0)
