from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from crossrank.errors import ModelLoadError
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadLayout, HeadSpec
from crossrank.models.tiny import build_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def plain_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("plain") / "model", plain_encoder=True)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _plain_logits(path: Path, pairs: list[tuple[str, str]]) -> np.ndarray:
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    enc = tok([q for q, _ in pairs], [d for _, d in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits.numpy()


PAIRS = [("what is bm25", "bm25 is a ranking function"), ("cats", "dogs and cats")]


def test_loads_checkpoint_with_stored_heads(tiny_dir: Path) -> None:
    model = CrossEncoderModel.from_pretrained(tiny_dir)
    assert model.heads == HeadLayout.single(HeadSpec.binary())
    assert not model.module.training
    assert model.max_positions == 512


def test_plain_encoder_gets_seeded_fresh_head(plain_encoder_dir: Path) -> None:
    heads = [HeadSpec.graded(4, "grade"), HeadSpec.binary("click")]
    state = torch.random.get_rng_state()
    a = CrossEncoderModel.from_pretrained(plain_encoder_dir, heads=heads, seed=3)
    assert torch.equal(state, torch.random.get_rng_state()), "loading must not touch the global RNG"
    b = CrossEncoderModel.from_pretrained(plain_encoder_dir, heads=heads, seed=3)
    c = CrossEncoderModel.from_pretrained(plain_encoder_dir, heads=heads, seed=4)
    assert a.module.config.num_labels == 5
    assert torch.equal(a.module.classifier.weight, b.module.classifier.weight)
    assert not torch.equal(a.module.classifier.weight, c.module.classifier.weight)


def test_save_load_round_trip_keeps_heads_and_scores(
    tmp_path: Path, plain_encoder_dir: Path
) -> None:
    heads = HeadLayout.of([HeadSpec.binary("click"), HeadSpec.graded(3, "grade")], primary="grade")
    model = CrossEncoderModel.from_pretrained(plain_encoder_dir, heads=heads)
    out = model.save_pretrained(tmp_path / "saved")
    config = json.loads((out / "config.json").read_text())
    assert len(config["id2label"]) == 4  # transformers derives num_labels from id2label
    assert config["crossrank"] == heads.to_config()
    assert not list(out.glob(".crossrank-save-*")), "temporary save directory left behind"
    again = CrossEncoderModel.from_pretrained(out)
    assert again.heads == heads
    # Plain transformers reads the same file: identical logits.
    before = _plain_logits(out, PAIRS)
    with torch.no_grad():
        enc = model.tokenizer(
            [q for q, _ in PAIRS], [d for _, d in PAIRS], padding=True, return_tensors="pt"
        )
        np.testing.assert_allclose(again.module(**enc).logits.numpy(), before, atol=1e-6)


def test_directory_without_weights_is_refused(tmp_path: Path, tiny_dir: Path) -> None:
    path = _copy(tiny_dir, tmp_path / "m")
    (path / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no model weights"):
        CrossEncoderModel.from_pretrained(path)


def test_pickle_only_checkpoint_is_refused_with_reason(tmp_path: Path, tiny_dir: Path) -> None:
    path = _copy(tiny_dir, tmp_path / "m")
    torch.save(load_file(path / "model.safetensors"), path / "pytorch_model.bin")
    (path / "model.safetensors").unlink()
    with pytest.raises(
        ModelLoadError, match=r"pickle weights.*pytorch_model\.bin.*safetensors only"
    ):
        CrossEncoderModel.from_pretrained(path)


def test_missing_directory_and_config(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        CrossEncoderModel.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        CrossEncoderModel.from_pretrained(tmp_path / "empty")


def test_config_weights_shape_mismatch(tmp_path: Path, tiny_dir: Path) -> None:
    path = _copy(tiny_dir, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["intermediate_size"] = 40
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="config/weights mismatch"):
        CrossEncoderModel.from_pretrained(path)


def test_config_with_more_layers_than_weights(tmp_path: Path, tiny_dir: Path) -> None:
    path = _copy(tiny_dir, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="missing from the checkpoint"):
        CrossEncoderModel.from_pretrained(path)


def test_weights_with_more_layers_than_config(tmp_path: Path, tiny_dir: Path) -> None:
    path = _copy(tiny_dir, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["num_hidden_layers"] = 1
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="no place in the config"):
        CrossEncoderModel.from_pretrained(path)


def test_requested_head_size_must_match_checkpoint(tiny_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="head size mismatch"):
        CrossEncoderModel.from_pretrained(tiny_dir, heads=[HeadSpec.graded(3)])


def test_stored_head_section_disagreeing_with_weights(tmp_path: Path, tiny_dir: Path) -> None:
    path = _copy(tiny_dir, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["crossrank"] = HeadLayout.single(HeadSpec.graded(5)).to_config()
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="head size mismatch"):
        CrossEncoderModel.from_pretrained(path)


def test_multi_label_checkpoint_without_head_section_needs_heads(
    tmp_path: Path, tiny_dir: Path
) -> None:
    path = _copy(tiny_dir, tmp_path / "m")
    weights = load_file(path / "model.safetensors")
    weights["classifier.weight"] = torch.zeros(3, weights["classifier.weight"].shape[1])
    weights["classifier.bias"] = torch.zeros(3)
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((path / "config.json").read_text())
    del config["crossrank"]
    config["id2label"] = {str(i): f"L{i}" for i in range(3)}
    config["label2id"] = {f"L{i}": i for i in range(3)}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="pass heads"):
        CrossEncoderModel.from_pretrained(path)
    model = CrossEncoderModel.from_pretrained(path, heads=[HeadSpec.graded(3)])
    assert model.heads.num_labels == 3


def test_remote_code_is_not_trusted_by_default(tmp_path: Path, tiny_dir: Path) -> None:
    path = _copy(tiny_dir, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.EvilModel"}
    (path / "config.json").write_text(json.dumps(config))
    (path / "evil.py").write_text("raise SystemExit('remote code ran')\n")
    model = CrossEncoderModel.from_pretrained(path)
    assert type(model.module).__name__ == "BertForSequenceClassification"


def test_unresolvable_hub_id_is_a_load_error() -> None:
    with pytest.raises(
        ModelLoadError, match="neither a local model directory nor a downloadable hub id"
    ):
        CrossEncoderModel.from_pretrained("not a valid/repo//id")


def test_half_precision_checkpoint_is_upcast_to_fp32(tmp_path: Path, tiny_dir: Path) -> None:
    # The shipped models are fp16 safetensors; crossrank always computes from fp32 weights.
    half_dir = tmp_path / "half"
    shutil.copytree(tiny_dir, half_dir)
    weights = load_file(str(half_dir / "model.safetensors"))
    save_file({k: v.half() for k, v in weights.items()}, str(half_dir / "model.safetensors"))
    half = CrossEncoderModel.from_pretrained(half_dir)
    assert {p.dtype for p in half.module.parameters()} == {torch.float32}
    full = CrossEncoderModel.from_pretrained(tiny_dir)
    reference = full.module.state_dict()
    for name, value in half.module.state_dict().items():
        if value.is_floating_point():
            assert torch.equal(value, reference[name].half().float()), name
