"""Success shapes of every endpoint, and scores equal to offline ``predict`` bit for bit."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_helpers import MAX_LENGTH, ServerFactory, load_encoder, make_docs

from crossrank import CrossEncoder
from crossrank.evaluation.calibration import PlattScaling, TemperatureScaling, save_calibrator
from crossrank.inference.passages import PassageConfig
from crossrank.serving.model import ServedModel
from crossrank.serving.schemas import RerankResponse, ScoreResponse, TeiRank
from crossrank.serving.tokens import TokenCounter

QUERY = "what is bm25"


def f32(values: list[float]) -> np.ndarray:
    # JSON carries the float32 scores as exact doubles; back to float32 loses nothing.
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def test_rerank_cohere_shape_sorted_and_exact(
    module_server: str, client: httpx.Client, reference: CrossEncoder
) -> None:
    docs = ["bm25 is a ranking function", "cats and dogs", "gene cancer study " * 30]
    body = {
        "model": "tiny",
        "query": QUERY,
        "documents": [docs[0], {"text": docs[1], "id": "d1"}, docs[2]],
        "return_documents": True,
        "top_n": 2,
    }
    r = client.post(f"{module_server}/v1/rerank", json=body)
    assert r.status_code == 200, r.text
    out = RerankResponse.model_validate(r.json())
    expected = reference.predict([(QUERY, d) for d in docs], activation="sigmoid")
    order = np.argsort(-expected, kind="stable")[:2]
    assert [res.index for res in out.results] == order.tolist()
    np.testing.assert_array_equal(
        f32([res.relevance_score for res in out.results]), expected[order]
    )
    for res in out.results:
        assert res.document is not None and res.document.text == docs[res.index]
        assert res.document.id == ("d1" if res.index == 1 else None)
    assert out.meta.score_kind == "sigmoid"
    assert out.meta.billed_units.search_units == 1
    assert out.meta.truncated and out.meta.truncated_documents == [2]  # 90 words > 64 tokens
    counted = TokenCounter(reference.model.tokenizer, MAX_LENGTH).count([QUERY] * 3, docs, None)
    assert out.meta.tokens.input_tokens == counted.tokens
    uuid_re = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.fullmatch(uuid_re, out.id)


def test_rerank_without_top_n_returns_all_without_documents(
    module_server: str, client: httpx.Client, reference: CrossEncoder
) -> None:
    docs = make_docs(30, seed=1)
    r = client.post(f"{module_server}/v1/rerank", json={"query": QUERY, "documents": docs})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert sorted(res["index"] for res in results) == list(range(30))
    assert all("document" not in res for res in results)
    expected = reference.predict([(QUERY, d) for d in docs], activation="sigmoid")
    got = np.empty(30, dtype=np.float32)
    got[[res["index"] for res in results]] = f32([res["relevance_score"] for res in results])
    np.testing.assert_array_equal(got, expected)
    assert not r.json()["meta"]["truncated"]


def test_raw_scores_are_the_logits(
    module_server: str, client: httpx.Client, reference: CrossEncoder
) -> None:
    docs = make_docs(12, seed=2)
    logits = reference.predict([(QUERY, d) for d in docs])
    r = client.post(
        f"{module_server}/v1/rerank", json={"query": QUERY, "documents": docs, "raw_scores": True}
    )
    got = {res["index"]: res["relevance_score"] for res in r.json()["results"]}
    np.testing.assert_array_equal(f32([got[i] for i in range(12)]), logits)
    assert r.json()["meta"]["score_kind"] == "raw"


def test_tei_rerank_shape(
    module_server: str, client: httpx.Client, reference: CrossEncoder
) -> None:
    texts = ["cats and dogs", "bm25 rank", "gene"]
    r = client.post(
        f"{module_server}/rerank",
        json={"query": QUERY, "texts": texts, "return_text": True, "raw_scores": True},
    )
    assert r.status_code == 200, r.text
    ranks = [TeiRank.model_validate(x) for x in r.json()]
    logits = reference.predict([(QUERY, t) for t in texts])
    assert [x.index for x in ranks] == np.argsort(-logits, kind="stable").tolist()
    np.testing.assert_array_equal(f32([x.score for x in ranks]), logits[[x.index for x in ranks]])
    assert [x.text for x in ranks] == [texts[x.index] for x in ranks]
    plain = client.post(f"{module_server}/rerank", json={"query": QUERY, "texts": texts}).json()
    assert all("text" not in x for x in plain)
    probs = reference.predict([(QUERY, t) for t in texts], activation="sigmoid")
    np.testing.assert_array_equal(
        f32([x["score"] for x in plain]), probs[[x["index"] for x in plain]]
    )


def test_tei_truncate_true_accepts_long_texts(module_server: str, client: httpx.Client) -> None:
    long_text = "gene " * 200
    r = client.post(
        f"{module_server}/rerank", json={"query": QUERY, "texts": [long_text], "truncate": True}
    )
    assert r.status_code == 200, r.text


def test_score_pairs_in_input_order(
    module_server: str, client: httpx.Client, reference: CrossEncoder
) -> None:
    pairs = [("cats", "dogs"), ("what is bm25", "bm25 is a ranking function"), ("gene", "cell")]
    r = client.post(f"{module_server}/v1/score", json={"pairs": [list(p) for p in pairs]})
    assert r.status_code == 200, r.text
    out = ScoreResponse.model_validate(r.json())
    np.testing.assert_array_equal(f32(out.scores), reference.predict(pairs, activation="sigmoid"))
    raw = client.post(
        f"{module_server}/v1/score", json={"pairs": [list(p) for p in pairs], "raw_scores": True}
    ).json()
    np.testing.assert_array_equal(f32(raw["scores"]), reference.predict(pairs))


@pytest.mark.parametrize(
    "passages",
    [
        {"window": 16, "stride": 8, "aggregate": "maxp"},
        {"window": 16, "stride": 8, "aggregate": "avgp", "max_windows": 3},
        {"window": 16, "stride": 8, "mode": "bm25"},
    ],
)
def test_passage_modes_match_offline(
    module_server: str, client: httpx.Client, reference: CrossEncoder, passages: dict
) -> None:
    docs = make_docs(10, seed=3, min_words=5, max_words=60)
    r = client.post(
        f"{module_server}/v1/rerank",
        json={"query": QUERY, "documents": docs, "raw_scores": True, "passages": passages},
    )
    assert r.status_code == 200, r.text
    pairs = [(QUERY, d) for d in docs]
    config = PassageConfig(**passages)
    got = {res["index"]: res["relevance_score"] for res in r.json()["results"]}
    np.testing.assert_array_equal(
        f32([got[i] for i in range(10)]), reference.predict(pairs, passages=config)
    )
    counted = TokenCounter(reference.model.tokenizer, MAX_LENGTH).count([QUERY] * 10, docs, config)
    assert r.json()["meta"]["tokens"]["input_tokens"] == counted.tokens
    assert r.json()["meta"]["truncated_documents"] == np.flatnonzero(counted.truncated).tolist()


def test_max_tokens_per_doc_scores_the_cut_documents(
    module_server: str, client: httpx.Client, reference: CrossEncoder
) -> None:
    docs = make_docs(8, seed=4, min_words=3, max_words=30)
    r = client.post(
        f"{module_server}/v1/rerank",
        json={"query": QUERY, "documents": docs, "max_tokens_per_doc": 6, "raw_scores": True},
    )
    assert r.status_code == 200, r.text
    cut = TokenCounter(reference.model.tokenizer, MAX_LENGTH).cut(docs, 6)
    assert any(c != d for c, d in zip(cut, docs, strict=True))
    got = {res["index"]: res["relevance_score"] for res in r.json()["results"]}
    np.testing.assert_array_equal(
        f32([got[i] for i in range(8)]), reference.predict([(QUERY, c) for c in cut])
    )


@pytest.fixture(params=[TemperatureScaling(2.5), PlattScaling(0.7, -0.3)], ids=["temp", "platt"])
def calibrated(request: pytest.FixtureRequest, model_dir: Path, tmp_path: Path) -> ServedModel:
    """The tiny model with a calibration.json beside it, loaded the way the CLI loads it."""
    calibrated_dir = tmp_path / "calibrated"
    shutil.copytree(model_dir, calibrated_dir)
    save_calibrator(request.param, calibrated_dir)
    encoder = CrossEncoder.from_pretrained(
        calibrated_dir, backend="torch", device="cpu", max_length=MAX_LENGTH
    )
    return ServedModel.load(calibrated_dir, encoder)


def test_calibrated_scores_by_default(
    calibrated: ServedModel,
    start_server: ServerFactory,
    client: httpx.Client,
    reference: CrossEncoder,
) -> None:
    url = start_server(model=calibrated)
    docs = make_docs(9, seed=5)
    r = client.post(f"{url}/v1/score", json={"pairs": [[QUERY, d] for d in docs]})
    assert calibrated.calibrator is not None
    expected = calibrated.calibrator.apply(reference.predict([(QUERY, d) for d in docs]))
    np.testing.assert_array_equal(np.asarray(r.json()["scores"]), expected)
    kind = f"calibrated-{calibrated.calibrator.kind}"
    assert r.json()["meta"]["score_kind"] == kind
    assert client.get(f"{url}/health").json()["score_kind"] == kind
    raw = client.post(f"{url}/v1/score", json={"pairs": [[QUERY, docs[0]]], "raw_scores": True})
    assert raw.json()["scores"] == [float(reference.predict([(QUERY, docs[0])])[0])]


def test_health_ready_and_openapi(module_server: str, client: httpx.Client) -> None:
    health = client.get(f"{module_server}/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny"
    assert health["backend"] == "torch" and health["max_length"] == MAX_LENGTH
    assert health["score_kind"] == "sigmoid"
    assert health["limits"]["max_client_docs"] == 1000
    ready = client.get(f"{module_server}/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    schema = client.get(f"{module_server}/openapi.json").json()
    assert {"/v1/rerank", "/rerank", "/v1/score", "/health", "/ready", "/metrics"} <= set(
        schema["paths"]
    )
    rerank_body = schema["paths"]["/v1/rerank"]["post"]["requestBody"]
    assert "RerankRequest" in str(rerank_body)


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"$')


def parse_prometheus(text: str) -> dict[str, dict[str, float]]:
    """Strict parse of the text format: every line is HELP, TYPE or a valid sample."""
    samples: dict[str, dict[str, float]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "histogram"}, line
            typed.add(name)
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        labels = match["labels"] or ""
        assert all(_LABEL.match(pair) for pair in labels.split(",") if labels), line
        value = float(match["value"])
        assert not math.isnan(value), line
        base = re.sub(r"_(bucket|sum|count)$", "", match["name"])
        assert base in typed or match["name"] in typed, f"sample before its TYPE: {line!r}"
        samples.setdefault(match["name"], {})[labels] = value
    return samples


def test_metrics_are_prometheus_text(
    model_dir: Path, start_server: ServerFactory, client: httpx.Client
) -> None:
    url = start_server(model=ServedModel(load_encoder(model_dir), name="tiny"))
    docs = make_docs(25, seed=6)
    for _ in range(3):
        assert (
            client.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": docs}).status_code
            == 200
        )
    assert (
        client.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": []}).status_code == 400
    )
    r = client.get(f"{url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = parse_prometheus(r.text)
    assert m["crossrank_requests_total"]['endpoint="/v1/rerank",status="200"'] == 3
    assert m["crossrank_errors_total"]['status="400"'] == 1
    assert m["crossrank_pairs_total"][""] == 75
    assert m["crossrank_batch_pairs_count"][""] == 3
    assert m["crossrank_batch_pairs_bucket"]['le="32"'] == 3  # 25 pairs per batch
    assert m["crossrank_request_latency_seconds_count"]['endpoint="/v1/rerank"'] == 4
    assert m["crossrank_queue_depth"][""] == 0
    assert m["crossrank_pairs_per_second"][""] > 0
    assert m["crossrank_requests_in_flight"][""] == 1  # this scrape
