"""save_interaction_model / load_interaction_model round trips and load errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from interaction_tiny import ALL_CONFIGS, TINY_CONFIGS, tiny_model
from safetensors.torch import load_file

from crossrank.errors import ModelLoadError
from crossrank.models.interaction import (
    KNRM,
    TermEmbeddings,
    WordTokenizer,
    build_interaction_model,
    load_interaction_model,
    save_interaction_model,
)

Q_IDS = torch.tensor([[2, 3, 8], [6, 8, 0]])
Q_MASK = torch.tensor([[True, True, True], [True, True, False]])
D_IDS = torch.tensor([[2, 5, 13, 9, 3, 13], [7, 8, 13, 6, 0, 0]])
D_MASK = torch.tensor([[True] * 6, [True, True, True, True, False, False]])


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_round_trip_gives_identical_scores(tmp_path: Path, name: str) -> None:
    model = tiny_model(name, seed=3, trainable=False).float()
    path = save_interaction_model(model, tmp_path / "model")
    loaded = load_interaction_model(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert loaded.embeddings.config == model.embeddings.config
    assert loaded.embeddings.vocabulary == model.embeddings.vocabulary
    assert not loaded.embeddings.embedding.weight.requires_grad
    with torch.inference_mode():
        expected = model(Q_IDS, Q_MASK, D_IDS, D_MASK)
        assert torch.equal(loaded(Q_IDS, Q_MASK, D_IDS, D_MASK), expected)


def test_directory_layout_and_manifest(tmp_path: Path) -> None:
    model = tiny_model("conv_knrm").float()
    path = save_interaction_model(model, tmp_path / "conv")
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "model.safetensors",
        "vocab.txt",
    ]
    manifest = json.loads((path / "config.json").read_text())
    assert manifest["arch"] == "conv_knrm" and manifest["schema_version"] == 1
    assert manifest["config"]["n_filters"] == 3
    assert manifest["embeddings"]["trainable"] is True
    # The embedding matrix travels with the model even when it is frozen.
    assert "embeddings.embedding.weight" in load_file(str(path / "model.safetensors"))
    loaded = load_interaction_model(path)
    assert WordTokenizer(loaded.embeddings.vocabulary).vocabulary == model.embeddings.vocabulary


def test_saving_replaces_an_existing_model_atomically(tmp_path: Path) -> None:
    target = tmp_path / "model"
    save_interaction_model(tiny_model("knrm").float(), target)
    save_interaction_model(tiny_model("tensor").float(), target)
    assert isinstance(load_interaction_model(target), type(tiny_model("tensor")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp dirs left behind


def test_tensor_embeddings_without_vocabulary_round_trip(tmp_path: Path) -> None:
    embeddings = TermEmbeddings.from_tensor(torch.randn(7, 3), trainable=True)
    path = save_interaction_model(build_interaction_model("knrm", embeddings), tmp_path / "m")
    loaded = load_interaction_model(path)
    assert isinstance(loaded, KNRM) and loaded.embeddings.vocabulary is None
    assert torch.equal(loaded.embeddings.embedding.weight, embeddings.embedding.weight)


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_broken_directories_raise_model_load_error(tmp_path: Path, name: str) -> None:
    path = save_interaction_model(tiny_model(name).float(), tmp_path / "m")
    manifest = json.loads((path / "config.json").read_text())
    cases = {
        "bad arch": {**manifest, "arch": "drmm"},
        "bad schema": {**manifest, "schema_version": 7},
        "unknown field": {**manifest, "config": {**manifest["config"], "colour": "red"}},
        "bad embedding": {**manifest, "embeddings": {**manifest["embeddings"], "dim": 5}},
    }
    for problem, broken in cases.items():
        (path / "config.json").write_text(json.dumps(broken))
        with pytest.raises(ModelLoadError):
            load_interaction_model(path)
            pytest.fail(problem)
    (path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="invalid JSON"):
        load_interaction_model(path)
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_interaction_model(tmp_path / "absent")


def test_missing_vocabulary_or_weights(tmp_path: Path) -> None:
    path = save_interaction_model(tiny_model("knrm").float(), tmp_path / "m")
    (path / "vocab.txt").unlink()
    with pytest.raises(ModelLoadError, match=r"vocab\.txt"):
        load_interaction_model(path)
    path = save_interaction_model(tiny_model("knrm").float(), tmp_path / "m")
    (path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match="cannot load weights"):
        load_interaction_model(path)
