"""Shipped models: name resolution, a broken installation, and the default reranker itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from crossrank import CrossEncoder
from crossrank.errors import ModelLoadError
from crossrank.models import registry
from crossrank.models.loading import resolve_model_dir

DEFAULT_DIR = registry.WEIGHTS_DIR / registry.SHIPPED_MODELS[registry.DEFAULT_RERANKER]


def test_unknown_names_are_not_shipped() -> None:
    assert registry.shipped_model_dir("some-org/some-model") is None


def test_a_missing_shipped_folder_is_an_error_not_a_hub_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ModelLoadError, match="incomplete"):
        resolve_model_dir(registry.DEFAULT_RERANKER)


def test_default_reranker_is_fp16_safetensors_with_its_training_record() -> None:
    assert resolve_model_dir(registry.DEFAULT_RERANKER) == DEFAULT_DIR
    weights = sorted(DEFAULT_DIR.glob("*.safetensors"))
    assert weights and not list(DEFAULT_DIR.glob("*.bin"))
    for path in weights:
        with safe_open(str(path), "pt") as handle:
            dtypes = {str(handle.get_slice(k).get_dtype()) for k in handle.keys()}  # noqa: SIM118
        assert dtypes == {"F16"}, path
    final = json.loads((DEFAULT_DIR / "final.json").read_text())
    assert final["dev"]["metric"] == "nDCG@10"
    assert (DEFAULT_DIR / "config.toml").is_file()


def test_default_reranker_prefers_the_supporting_abstract() -> None:
    ce = CrossEncoder.from_pretrained(registry.DEFAULT_RERANKER, backend="torch", device="cpu")
    claim = "Aspirin lowers the risk of a first heart attack in healthy men."
    docs = [
        "A randomized trial of low-dose aspirin in 22,071 healthy male physicians found a 44% "
        "reduction in the risk of first myocardial infarction compared with placebo.",
        "Soil bacteria fix atmospheric nitrogen in the root nodules of legumes.",
        "The thermal conductivity of graphene exceeds that of copper at room temperature.",
    ]
    scores = ce.predict([(claim, d) for d in docs])
    assert int(np.argmax(scores)) == 0
