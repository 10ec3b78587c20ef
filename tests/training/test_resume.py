"""Exact resume: kill -9 a training run mid-epoch, resume it, get bit-identical final weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

# Stage 1 takes 6 steps; stage 2 (32 groups / 4 per step, 2 epochs) steps 7..22. With a
# checkpoint every 3 steps, step 9 is stage 2's third batch of its first epoch: mid-epoch.
KILL_AFTER_STEP = 9
TIMEOUT_S = 120


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _checkpoint_step(out: Path) -> int:
    state = out / "checkpoints" / "last" / "state.json"
    try:
        return int(json.loads(state.read_text())["global_step"])
    except (OSError, ValueError, KeyError):
        return -1  # not written yet (the directory appears atomically, so never torn)


def _wait_for_checkpoint(proc: subprocess.Popen[bytes], out: Path, step: int) -> int:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        found = _checkpoint_step(out)
        if found >= step:
            return found
        if proc.poll() is not None:
            pytest.fail(f"training exited (code {proc.returncode}) before checkpoint {step}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"no checkpoint at step {step} within {TIMEOUT_S}s")


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model.safetensors"))


def test_kill_mid_epoch_then_resume_matches_uninterrupted_run(
    tmp_path: Path, tiny_recipe: Callable[..., str], train_script: list[str]
) -> None:
    recipe = tmp_path / "recipe.toml"
    # Last (not best-dev) weights, so the compared tensors come from after the resume.
    recipe.write_text(tiny_recipe(checkpoint_every=3, final_weights="last"), encoding="utf-8")
    full, killed = tmp_path / "full", tmp_path / "killed"

    subprocess.run([*train_script, str(recipe), str(full), "0", "0"], env=_env(), check=True,
                   timeout=TIMEOUT_S)  # fmt: skip

    # The callback sleeps 0.2 s per step, so the kill lands well before the run could finish.
    proc = subprocess.Popen([*train_script, str(recipe), str(killed), "0", "0.2"], env=_env())
    _wait_for_checkpoint(proc, killed, KILL_AFTER_STEP)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
    assert not (killed / "final.json").exists()
    state = json.loads((killed / "checkpoints" / "last" / "state.json").read_text())
    # Normally step 9 (stage 2, epoch 0, batch 3); a slow poller may first see a later
    # checkpoint, which is mid-epoch too (stage 2 has 8 batches per epoch).
    assert state["stage"] == 1 and 0 < state["batch"] < 8
    assert KILL_AFTER_STEP <= state["global_step"] < 22

    subprocess.run([*train_script, str(recipe), str(killed), "1", "0"], env=_env(), check=True,
                   timeout=TIMEOUT_S)  # fmt: skip

    expected, resumed = _weights(full), _weights(killed)
    assert expected.keys() == resumed.keys()
    different = [k for k in expected if not torch.equal(expected[k], resumed[k])]
    assert different == []
    final_full = json.loads((full / "final.json").read_text())
    final_resumed = json.loads((killed / "final.json").read_text())
    assert final_resumed["dev"] == final_full["dev"]
    assert final_resumed["best_dev"] == final_full["best_dev"]
    assert final_resumed["steps"] == final_full["steps"] == 22
    evals = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    evals_full = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    strip = ("pairs_per_s",)
    assert [{k: v for k, v in e.items() if k not in strip} for e in evals] == [
        {k: v for k, v in e.items() if k not in strip} for e in evals_full
    ]
