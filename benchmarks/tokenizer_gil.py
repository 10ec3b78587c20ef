"""Does crossrank's tokenising release the GIL? A Python thread spins beside it.

For each of the Rust tokenizer's ``encode_batch``, ``encode_batch_fast`` and
``PairTokenizer._encode`` (the fast call plus the ids' conversion to numpy), over the first
``--docs`` SciFact abstracts, prints the wall time and how far a pure-Python counter thread
got meanwhile, relative to the same thread running alone for as long. Near 1: the GIL was
free; near 0: tokenising held it. Pin it for a per-core view:

    cd benchmarks && RAYON_NUM_THREADS=1 python tokenizer_gil.py
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from pathlib import Path

from transformers import AutoTokenizer

from crossrank.inference.tokenize import PairTokenizer
from engine_vs_st import DEFAULT_DATA, default_model, load_scifact


def spin(stop: threading.Event, out: list[int]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
    out.append(n)


def progress_beside(work: Callable[[], object]) -> tuple[float, float]:
    """Wall time of ``work`` and the spinner's progress beside it over its progress alone."""
    stop, beside = threading.Event(), []
    thread = threading.Thread(target=spin, args=(stop, beside))
    start = time.perf_counter()
    thread.start()
    work()
    seconds = time.perf_counter() - start
    stop.set()
    thread.join()
    stop, alone = threading.Event(), []
    thread = threading.Thread(target=spin, args=(stop, alone))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    return seconds, beside[0] / alone[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=int, default=1500)
    args = parser.parse_args()
    corpus, _, _ = load_scifact(args.data)
    texts = list(corpus.values())[: args.docs]
    tok = PairTokenizer(
        AutoTokenizer.from_pretrained(default_model(Path.home() / ".cache" / "crossrank"))
    )
    rust = tok._rust
    calls = {
        "encode_batch": lambda: rust.encode_batch(texts, add_special_tokens=False),
        "encode_batch_fast": lambda: rust.encode_batch_fast(texts, add_special_tokens=False),
        "PairTokenizer._encode": lambda: tok._encode(texts),
    }
    for name, work in calls.items():
        seconds, share = progress_beside(work)
        print(f"{name}: {seconds * 1e3:.0f} ms, spinner at {share:.2f} of its speed alone")


if __name__ == "__main__":
    main()
