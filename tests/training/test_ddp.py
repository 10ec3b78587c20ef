"""Data-parallel training: two CPU processes (gloo) launched by torchrun.

Two ranks with half the groups each (and gradient accumulation) must end with identical
weights, equal (within float tolerance) to one process training on the whole batch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file

TIMEOUT_S = 180


def _env() -> dict[str, str]:
    # One thread per rank: two ranks share this machine's cores.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _run_group(command: list[str]) -> None:
    """Run torchrun in its own process group, so a timeout also ends the worker ranks."""
    proc = subprocess.Popen(command, env=_env(), start_new_session=True)
    try:
        code = proc.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    assert code == 0, f"torchrun exited with {code}"


def test_two_ranks_agree_and_match_one_process(
    tmp_path: Path, tiny_recipe: Callable[..., str], train_script: list[str]
) -> None:
    # No dropout, so both runs draw the same (empty) randomness; last weights, so the
    # comparison covers every step; grad_accum 2 exercises DDP's no_sync micro-batches.
    text = tiny_recipe(grad_accum=2, epochs=1, final_weights="last", checkpoint_every=4)
    text = text.replace("dropout = 0.1", "dropout = 0.0")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(text, encoding="utf-8")
    single, ddp = tmp_path / "single", tmp_path / "ddp"

    subprocess.run([*train_script, str(recipe), str(single), "0", "0"], env=_env(), check=True,
                   timeout=TIMEOUT_S)  # fmt: skip
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2"]  # fmt: skip
    _run_group([*launcher, *train_script[1:], str(recipe), str(ddp), "0", "0"])

    rank0 = load_file(str(ddp / "rank0.safetensors"))
    rank1 = load_file(str(ddp / "rank1.safetensors"))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    reference = load_file(str(single / "rank0.safetensors"))
    # Group losses are shift-invariant and softmax attention ignores a shared key offset, so
    # key biases and the output bias have zero true gradient: they get only rounding noise,
    # which Adam normalises into lr-sized steps. Every other weight must agree closely.
    noise_only = ("attention.self.key.bias", "classifier.bias")
    compared = [k for k in reference if not k.endswith(noise_only)]
    worst = max((rank0[k] - reference[k]).abs().max().item() for k in compared)
    assert worst < 1e-5, f"2 ranks vs 1 process differ by up to {worst}"
    saved = load_file(str(single / "model.safetensors"))  # HF names, without "encoder."
    assert all(torch.equal(reference[k], saved[k.removeprefix("encoder.")]) for k in reference)

    summary = json.loads((ddp / "final.json").read_text())
    assert summary["world_size"] == 2
    assert summary["steps"] == json.loads((single / "final.json").read_text())["steps"] == 14
    assert summary["dev"]["metric"] == "nDCG@10" and 0.0 <= summary["dev"]["model"] <= 1.0
    evals = [json.loads(line) for line in (ddp / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals if e["event"] == "eval"] == [6, 10, 14]
    assert not (ddp / "checkpoints").exists()
