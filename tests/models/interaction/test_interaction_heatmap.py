"""Heat-map PNGs for one query-document pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from interaction_tiny import TINY_CONFIGS, tiny_model, tiny_tokenizer

from crossrank.errors import ConfigError
from crossrank.models.interaction import save_heatmap, save_interaction_heatmap, save_kernel_heatmap

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUERY, DOC = "cats purr", "the cats purr . dogs bark !"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 100 and path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_interaction_heatmap_is_written(tmp_path: Path, name: str) -> None:
    out = save_interaction_heatmap(
        tiny_model(name).float(), tiny_tokenizer(), QUERY, DOC, tmp_path / "sub" / "m.png"
    )
    assert _is_png(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.png"]  # no temp file left


@pytest.mark.parametrize("name", ["knrm", "conv_knrm"])
def test_kernel_heatmap_is_written(tmp_path: Path, name: str) -> None:
    out = save_kernel_heatmap(
        tiny_model(name).float(), tiny_tokenizer(), QUERY, DOC, tmp_path / "k.png"
    )
    assert _is_png(out)


def test_kernel_heatmap_needs_a_kernel_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no kernels"):
        save_kernel_heatmap(tiny_model("tensor"), tiny_tokenizer(), QUERY, DOC, tmp_path / "k.png")
    assert not (tmp_path / "k.png").exists()


def test_save_heatmap_checks_labels_and_accepts_tensors(tmp_path: Path) -> None:
    assert _is_png(save_heatmap(torch.rand(2, 3), ["a", "b"], ["x", "y", "z"], tmp_path / "t.png"))
    with pytest.raises(ConfigError, match="does not match"):
        save_heatmap(np.zeros((2, 3)), ["a"], ["x", "y", "z"], tmp_path / "bad.png")
    with pytest.raises(ConfigError, match="empty"):
        save_interaction_heatmap(tiny_model("knrm"), tiny_tokenizer(), "", DOC, tmp_path / "e.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.png"]
