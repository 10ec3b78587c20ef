"""Micro-batching under concurrency: isolation, merging, 429 with Retry-After, 504."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from serving_helpers import GatedModel, ServerFactory, make_docs, wait_until

from crossrank import CrossEncoder
from crossrank.serving.config import ServerConfig

# Merged batches pad rows to other requests' lengths, which moves fp32 logits by float noise
# (measured <= 6e-8 here, 5e-8 on MiniLM); a request scored alone matches exactly.
MERGED_ATOL = 1e-6


async def _rerank_all(url: str, requests: list[tuple[str, list[str]]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{url}/v1/rerank", json={"query": q, "documents": d, "raw_scores": True}
                )
                for q, d in requests
            )
        )


def _scores_in_input_order(response: httpx.Response, n: int) -> np.ndarray:
    results = response.json()["results"]
    out = np.full(n, np.nan, dtype=np.float32)
    out[[r["index"] for r in results]] = [r["relevance_score"] for r in results]
    return out


def test_concurrent_requests_never_see_each_others_scores(
    start_server: ServerFactory, gated: GatedModel, reference: CrossEncoder
) -> None:
    url = start_server(ServerConfig(max_queue=64), model=gated)
    rng = np.random.default_rng(0)
    requests = [
        (f"query {i} gene", make_docs(int(rng.integers(3, 40)), seed=100 + i)) for i in range(24)
    ]
    # The first request holds the model while the others queue up; releasing the gate
    # lets the batcher merge them, so this checks the split of merged results.
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(asyncio.run, _rerank_all(url, requests))
        wait_until(gated.entered.is_set)
        total = sum(len(d) for _, d in requests)
        wait_until(lambda: gated.calls[0] + _queued_pairs(url) == total)
        gated.gate.set()
        responses = future.result(timeout=60)
    assert max(gated.calls) > 200  # some model call merged many requests
    assert len(gated.calls) < 24
    for (query, docs), response in zip(requests, responses, strict=True):
        assert response.status_code == 200, response.text
        expected = reference.predict([(query, d) for d in docs])
        got = _scores_in_input_order(response, len(docs))
        np.testing.assert_allclose(got, expected, rtol=0, atol=MERGED_ATOL)


def _queued_pairs(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return int(re.search(r"^crossrank_queued_pairs (\d+)$", text, re.MULTILINE)[1])


def _queue_depth(url: str) -> int:
    return httpx.get(f"{url}/health", timeout=5).json()["queue_depth"]


def test_sequential_requests_match_offline_exactly(
    start_server: ServerFactory, reference: CrossEncoder
) -> None:
    url = start_server()
    with httpx.Client(timeout=30) as client:
        for i in range(5):
            docs = make_docs(10 + 7 * i, seed=200 + i, max_words=40)
            r = client.post(
                f"{url}/v1/rerank",
                json={"query": "cat gene", "documents": docs, "raw_scores": True},
            )
            expected = reference.predict([("cat gene", d) for d in docs])
            np.testing.assert_array_equal(_scores_in_input_order(r, len(docs)), expected)


def test_queue_full_is_429_with_retry_after_and_recovers(
    start_server: ServerFactory, gated: GatedModel
) -> None:
    url = start_server(ServerConfig(max_queue=2), model=gated)
    body = {"query": "cat", "documents": make_docs(5, seed=1)}
    with ThreadPoolExecutor(3) as pool, httpx.Client(timeout=30) as client:
        running = pool.submit(client.post, f"{url}/v1/rerank", json=body)
        wait_until(gated.entered.is_set)
        queued = [pool.submit(client.post, f"{url}/v1/rerank", json=body) for _ in range(2)]
        wait_until(lambda: _queue_depth(url) == 2)
        r = client.post(f"{url}/v1/rerank", json=body)
        assert r.status_code == 429, r.text
        assert r.json()["error_type"] == "queue_full"
        assert "2 requests are queued" in r.json()["message"]
        assert int(r.headers["retry-after"]) >= 1
        # refused before the body is parsed: even malformed JSON gets the 429
        bad = client.post(
            f"{url}/rerank", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 429
        gated.gate.set()
        assert running.result(timeout=30).status_code == 200
        assert [f.result(timeout=30).status_code for f in queued] == [200, 200]
        # recovered without a restart
        assert client.post(f"{url}/v1/rerank", json=body).status_code == 200
        metrics = client.get(f"{url}/metrics").text
        assert 'crossrank_errors_total{status="429"} 2' in metrics


def test_timeout_is_504_and_frees_the_queue(
    start_server: ServerFactory, gated: GatedModel, reference: CrossEncoder
) -> None:
    url = start_server(ServerConfig(request_timeout_s=0.5), model=gated)
    docs = make_docs(4, seed=2)
    body = {"query": "cat", "documents": docs, "raw_scores": True}
    with ThreadPoolExecutor(2) as pool, httpx.Client(timeout=30) as client:
        first = pool.submit(client.post, f"{url}/v1/rerank", json=body)
        wait_until(gated.entered.is_set)
        second = pool.submit(client.post, f"{url}/v1/rerank", json=body)
        r1, r2 = first.result(timeout=30), second.result(timeout=30)
        assert r1.status_code == 504 and r2.status_code == 504
        assert r1.json()["error_type"] == "timeout"
        assert "timed out after 0.5 s while being scored" in r1.json()["message"]
        assert "timed out after 0.5 s while queued" in r2.json()["message"]
        assert _queue_depth(url) == 0  # the queued one was withdrawn
        gated.gate.set()
        wait_until(lambda: httpx.get(f"{url}/metrics").text.count("crossrank_batches_total 1") == 1)
        r3 = client.post(f"{url}/v1/rerank", json=body)
        assert r3.status_code == 200
        np.testing.assert_array_equal(
            _scores_in_input_order(r3, 4), reference.predict([("cat", d) for d in docs])
        )
    assert gated.calls == [4, 4]  # the withdrawn request never reached the model
