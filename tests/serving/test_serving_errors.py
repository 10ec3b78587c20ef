"""Every refusal: status code, error type and a message that names the problem."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from serving_helpers import ServerFactory, make_docs

from crossrank.errors import ConfigError, MissingDataError
from crossrank.serving.config import ServerConfig, read_api_key
from crossrank.serving.server import listen

QUERY = "what is bm25"


def assert_error(r: httpx.Response, status: int, error_type: str, *fragments: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_type"] == error_type, body
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body["message"])
    return body


def test_empty_documents_is_400(module_server: str, client: httpx.Client) -> None:
    r = client.post(f"{module_server}/v1/rerank", json={"query": QUERY, "documents": []})
    assert_error(r, 400, "bad_request", "documents must not be empty")
    r = client.post(f"{module_server}/rerank", json={"query": QUERY, "texts": []})
    assert_error(r, 400, "bad_request", "texts must not be empty")
    r = client.post(f"{module_server}/v1/score", json={"pairs": []})
    assert_error(r, 400, "bad_request", "pairs must not be empty")


def test_empty_or_overlong_query_is_400(module_server: str, client: httpx.Client) -> None:
    r = client.post(f"{module_server}/v1/rerank", json={"query": "  ", "documents": ["a"]})
    assert_error(r, 400, "bad_request", "query of pair 0 is empty")
    r = client.post(f"{module_server}/v1/rerank", json={"query": "gene " * 80, "documents": ["a"]})
    assert_error(r, 400, "bad_request", "query of pair 0 has", "max_length 64")
    r = client.post(f"{module_server}/v1/score", json={"pairs": [["ok", "a"], ["", "b"]]})
    assert_error(r, 400, "bad_request", "query of pair 1 is empty")


def test_bad_passages_is_400(module_server: str, client: httpx.Client) -> None:
    body = {"query": QUERY, "documents": ["a"], "passages": {"window": 8, "stride": 16}}
    r = client.post(f"{module_server}/v1/rerank", json=body)
    assert_error(r, 400, "bad_request", "passages: stride (16) must not exceed window (8)")


def test_unknown_model_is_404(module_server: str, client: httpx.Client) -> None:
    r = client.post(
        f"{module_server}/v1/rerank",
        json={"model": "rerank-v3.5", "query": QUERY, "documents": ["a"]},
    )
    assert_error(r, 404, "model_not_found", "'rerank-v3.5'", "serves 'tiny'")
    r = client.get(f"{module_server}/v2/nothing")
    assert_error(r, 404, "http", "Not Found")


def test_malformed_json_is_422(module_server: str, client: httpx.Client) -> None:
    r = client.post(
        f"{module_server}/v1/rerank",
        content=b'{"query": "q", "documents": ["a",',
        headers={"content-type": "application/json"},
    )
    body = assert_error(r, 422, "validation", "malformed JSON at character")
    assert body["errors"][0]["field"] == "body"
    r = client.post(f"{module_server}/v1/rerank", content=b'{"query": "q"}')  # no content type
    assert_error(r, 422, "validation", "body: the body must be a JSON object")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"query": 3, "documents": ["a"]}, "query", "valid string"),
        ({"query": "q", "documents": ["a", 7]}, "documents[1]", "must be a string or an object"),
        ({"query": "q", "documents": [{"text": 5}]}, "documents[0].text", "valid string"),
        ({"query": "q", "documents": [{"txt": "a"}]}, "documents[0].text", "Field required"),
        ({"query": "q", "documents": ["a"], "top_n": "2"}, "top_n", "valid integer"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, "top_n", "greater than 0"),
        (
            {"query": "q", "documents": ["a"], "return_documents": "yes"},
            "return_documents",
            "boolean",
        ),
        ({"query": "q", "documents": "a"}, "documents", "valid list"),
        ({"documents": ["a"]}, "query", "Field required"),
        ({"query": "q", "documents": ["a"], "topn": 1}, "topn", "Extra inputs"),
        (
            {"query": "q", "documents": ["a"], "passages": {"mode": "x"}},
            "passages.mode",
            "'windows' or 'bm25'",
        ),
    ],
)
def test_wrong_types_are_422_naming_the_field(
    module_server: str, client: httpx.Client, body: dict, field: str, message: str
) -> None:
    r = client.post(f"{module_server}/v1/rerank", json=body)
    out = assert_error(r, 422, "validation", f"{field}: ")
    entry = next(e for e in out["errors"] if e["field"] == field)
    assert message in entry["message"]


def test_wrong_pair_shape_is_422(module_server: str, client: httpx.Client) -> None:
    r = client.post(f"{module_server}/v1/score", json={"pairs": [["q", "d", "x"]]})
    assert_error(r, 422, "validation", "pairs[0]: ", "at most 2 items")
    r = client.post(f"{module_server}/rerank", json={"query": "q", "texts": ["a", None]})
    assert_error(r, 422, "validation", "texts[1]: ", "valid string")


def test_too_many_documents_is_413(start_server: ServerFactory, client: httpx.Client) -> None:
    url = start_server(ServerConfig(max_client_docs=5))
    r = client.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": make_docs(6, seed=0)})
    assert_error(r, 413, "too_many_documents", "6 documents", "at most 5")
    r = client.post(f"{url}/v1/score", json={"pairs": [["q", "d"]] * 6})
    assert_error(r, 413, "too_many_documents", "6 pairs")
    ok = client.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": make_docs(5, seed=0)})
    assert ok.status_code == 200


def test_token_budget_is_413(start_server: ServerFactory, client: httpx.Client) -> None:
    url = start_server(ServerConfig(max_request_tokens=200, max_batch_tokens=50))
    docs = make_docs(40, seed=1, min_words=8, max_words=12)
    r = client.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": docs})
    assert_error(r, 413, "token_budget_exceeded", "budget per request is 200")
    # over the merge budget (50) but within the request budget: scored alone
    r = client.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": docs[:4]})
    assert r.status_code == 200, r.text
    assert 50 < r.json()["meta"]["tokens"]["input_tokens"] <= 200


def test_tei_without_truncate_refuses_long_texts_with_413(
    module_server: str, client: httpx.Client
) -> None:
    r = client.post(
        f"{module_server}/rerank", json={"query": QUERY, "texts": ["short", "gene " * 100]}
    )
    assert_error(r, 413, "input_too_long", "texts[1] does not fit max_length 64", "truncate=true")


def test_body_too_large_is_413(start_server: ServerFactory, client: httpx.Client) -> None:
    url = start_server(ServerConfig(max_body_bytes=1000))
    docs = ["x" * 100] * 20
    r = client.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": docs})
    assert_error(r, 413, "body_too_large", "limit of 1000 bytes")

    def chunks():  # no Content-Length: the limit applies while the body streams in
        yield b'{"query": "q", "documents": ['
        for _ in range(30):
            yield b'"' + b"y" * 100 + b'",'
        yield b'"z"]}'

    r = client.post(
        f"{url}/v1/rerank", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(r, 413, "body_too_large", "more than 1000 bytes")
    ok = client.post(f"{url}/v1/rerank", json={"query": QUERY, "documents": ["small"]})
    assert ok.status_code == 200


def test_api_key(start_server: ServerFactory, client: httpx.Client) -> None:
    url = start_server(ServerConfig(api_key="s3cret-key"))
    body = {"query": QUERY, "documents": ["a"]}
    r = client.post(f"{url}/v1/rerank", json=body)
    assert_error(r, 401, "unauthorized", "missing API key")
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post(f"{url}/v1/rerank", json=body, headers={"Authorization": "Bearer wrong"})
    assert_error(r, 401, "unauthorized", "invalid API key")
    r = client.post(
        f"{url}/rerank",
        json={"query": "q", "texts": ["a"]},
        headers={"Authorization": "Basic s3cret-key"},
    )
    assert_error(r, 401, "unauthorized", "invalid API key")
    r = client.post(f"{url}/v1/score", json={"pairs": [["q", "a"]]})
    assert_error(r, 401, "unauthorized", "missing API key")
    good = {"Authorization": "Bearer s3cret-key"}
    assert client.post(f"{url}/v1/rerank", json=body, headers=good).status_code == 200
    assert client.get(f"{url}/health").status_code == 200  # operations stay open
    assert client.get(f"{url}/metrics").status_code == 200


def test_read_api_key(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("  abc123\n")
    assert read_api_key(tmp_path / "key") == "abc123"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        read_api_key(tmp_path / "empty")
    (tmp_path / "two").write_text("a b")
    with pytest.raises(ConfigError, match="one key"):
        read_api_key(tmp_path / "two")
    with pytest.raises(MissingDataError, match="nope"):
        read_api_key(tmp_path / "nope")


def test_server_config_validation() -> None:
    with pytest.raises(ConfigError, match="max_client_docs must be > 0"):
        ServerConfig(max_client_docs=0)
    with pytest.raises(ConfigError, match="max_wait_s must be >= 0"):
        ServerConfig(max_wait_s=-1)
    with pytest.raises(ConfigError, match="api_key must not be empty"):
        ServerConfig(api_key="")
    assert "s3cret" not in repr(ServerConfig(api_key="s3cret"))


def test_listen_names_a_busy_address() -> None:
    busy = listen("127.0.0.1", 0)
    port = busy.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            listen("127.0.0.1", port)
    finally:
        busy.close()
