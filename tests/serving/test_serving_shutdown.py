"""Real server processes: graceful SIGTERM with requests in flight, and the CLI verb."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from serving_helpers import make_docs, wait_until

from crossrank import CrossEncoder
from crossrank.serving.server import listen

pytestmark = pytest.mark.slow  # each test starts a Python process that imports torch
HERE = Path(__file__).resolve().parent
START_TIMEOUT_S = 90  # importing torch and transformers on a busy 2-core box


def free_port() -> int:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    return port


@contextmanager
def server_process(args: list[str], port: int) -> Iterator[subprocess.Popen]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _wait_ready(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def _in_flight(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("crossrank_requests_in_flight "))
    return int(line.split()[1]) - 1  # minus this scrape


def _scores(response: httpx.Response) -> np.ndarray:
    return np.asarray(response.json()["scores"], dtype=np.float32)


def test_sigterm_finishes_in_flight_and_queued_requests(
    model_dir: Path, reference: CrossEncoder
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    batches = [make_docs(6, seed=300), make_docs(9, seed=301)]
    args = [str(HERE / "slow_server.py"), str(model_dir), str(port), "1.5"]
    with server_process(args, port) as proc, ThreadPoolExecutor(2) as pool:
        running = pool.submit(
            httpx.post,
            f"{url}/v1/score",
            json={"pairs": [["cat", d] for d in batches[0]]},
            timeout=60,
        )
        wait_until(lambda: _in_flight(url) == 1)
        queued = pool.submit(
            httpx.post,
            f"{url}/v1/score",
            json={"pairs": [["cat", d] for d in batches[1]]},
            timeout=60,
        )
        wait_until(lambda: _in_flight(url) == 2)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):  # no new connections once stopping
            httpx.get(f"{url}/health", timeout=2)
        for future, docs in zip((running, queued), batches, strict=True):
            response = future.result(timeout=30)
            assert response.status_code == 200, response.text
            expected = reference.predict([("cat", d) for d in docs], activation="sigmoid")
            np.testing.assert_allclose(_scores(response), expected, rtol=0, atol=1e-6)
        assert proc.wait(30) == 0
        output = proc.stdout.read()
    assert "stopped cleanly" in output
    assert "Traceback" not in output


def test_cli_serve_end_to_end(model_dir: Path, reference: CrossEncoder, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "key").write_text("k3y\n")
    args = [
        "-m", "crossrank.cli.main", "serve",
        "--model", str(model_dir), "--port", str(port), "--backend", "torch",
        "--max-length", "64", "--max-client-docs", "50", "--max-queue", "4",
        "--api-key-file", str(tmp_path / "key"), "--quiet",
    ]  # fmt: skip
    docs = make_docs(12, seed=400)
    body = {"query": "gene", "documents": docs, "raw_scores": True}
    with server_process(args, port) as proc:
        assert httpx.post(f"{url}/v1/rerank", json=body).status_code == 401
        r = httpx.post(f"{url}/v1/rerank", json=body, headers={"Authorization": "Bearer k3y"})
        assert r.status_code == 200, r.text
        got = {x["index"]: x["relevance_score"] for x in r.json()["results"]}
        expected = reference.predict([("gene", d) for d in docs])
        np.testing.assert_array_equal(np.array([got[i] for i in range(12)], np.float32), expected)
        health = httpx.get(f"{url}/health").json()
        assert health["limits"]["max_client_docs"] == 50 and health["limits"]["max_queue"] == 4
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_cli_reports_a_busy_port(model_dir: Path) -> None:
    busy = listen("127.0.0.1", 0)
    try:
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "crossrank.cli.main", "serve", "--model", str(model_dir),
             "--port", str(port), "--backend", "torch", "--quiet"],
            capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
        )  # fmt: skip
    finally:
        busy.close()
    assert out.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
