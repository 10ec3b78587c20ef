"""ONNX Runtime int8 variants on the engine's own batches: what is (and is not) faster on this CPU.

Scores the first ``--queries`` SciFact dev queries x BM25 top-100 once with crossrank's onnx
backend to capture the exact length-bucketed batches it runs, then times bare
``InferenceSession.run`` over those batches for each variant (best of ``--repeats``, after a
warm-up), printing pairs/s and the largest |logit difference| to the fp32 graph:

- ``fp32`` / ``int8``: crossrank's cached graphs (the ``onnx`` and ``onnx-int8`` backends);
- ``fp32-2x1`` / ``int8-2x1``: two 1-thread sessions fed alternate batches from two threads;
- ``int8-u8u8``: uint8 instead of int8 weights;
- ``int8-per-tensor``: one scale per weight matrix instead of per output channel;
- ``int8-static``: static QDQ quantisation, activation ranges calibrated on every 8th batch.

``--profile`` adds ORT's per-operator time split for the fp32 and int8 graphs.

Usage:
    python benchmarks/int8_variants.py --model <fp32 HF dir> --max-length 256 --profile
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from crossrank import CrossEncoder
from crossrank.inference.tokenize import TokenBatch
from engine_vs_st import DEFAULT_DATA, bm25_candidates, load_scifact

Feed = dict[str, np.ndarray]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="fp32 Hugging Face directory")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--profile", action="store_true")
    return p.parse_args()


def capture(args: argparse.Namespace) -> tuple[list[Feed], Path]:
    """The onnx backend's batches for the workload, and its cache directory."""
    corpus, queries, _ = load_scifact(args.data)
    queries = dict(list(queries.items())[: args.queries])
    pairs = [(queries[q], corpus[d]) for q, d in bm25_candidates(corpus, queries, 100)]
    encoder = CrossEncoder.from_pretrained(args.model, backend="onnx", max_length=args.max_length)
    backend = encoder._engine.backend  # the benchmark looks inside on purpose
    seen: list[TokenBatch] = []
    backend.forward_stream = lambda batches: [seen.append(b) or backend.forward(b) for b in batches]
    encoder.predict(pairs)
    feeds = [
        {
            "input_ids": b.input_ids,
            "attention_mask": b.attention_mask,
            "token_type_ids": b.token_type_ids,
        }
        for b in seen
    ]
    return feeds, Path(backend.path).parent


def session(path: Path, threads: int, profile: str | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def runner(path: Path, feeds: list[Feed], dual: bool) -> Callable[[], np.ndarray]:
    if not dual:
        one = session(path, 2)
        return lambda: np.concatenate([one.run(["logits"], f)[0] for f in feeds])
    two = [session(path, 1), session(path, 1)]

    def run() -> np.ndarray:
        # ORT releases the GIL, so the two sessions run at the same time.
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(two[i % 2].run, ["logits"], f) for i, f in enumerate(feeds)]
            return np.concatenate([j.result()[0] for j in jobs])

    return run


def build_variants(cache: Path, feeds: list[Feed], tmp: Path) -> dict[str, tuple[Path, bool]]:
    fp32, int8 = cache / "model.onnx", cache / "model.int8.onnx"
    dynamic = {
        "op_types_to_quantize": ["MatMul", "Attention"],
        "extra_options": {"DefaultTensorType": TensorProto.FLOAT},
    }
    quantize_dynamic(
        fp32, tmp / "u8u8.onnx", per_channel=True, weight_type=QuantType.QUInt8, **dynamic
    )
    quantize_dynamic(
        fp32, tmp / "tensor.onnx", per_channel=False, weight_type=QuantType.QInt8, **dynamic
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(feeds[::8])

        def get_next(self) -> Feed | None:
            return next(self.feeds, None)

    quantize_static(
        fp32,
        tmp / "static.onnx",
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        **dynamic,
    )
    return {
        "fp32": (fp32, False),
        "fp32-2x1": (fp32, True),
        "int8": (int8, False),
        "int8-2x1": (int8, True),
        "int8-u8u8": (tmp / "u8u8.onnx", False),
        "int8-per-tensor": (tmp / "tensor.onnx", False),
        "int8-static": (tmp / "static.onnx", False),
    }


def op_profile(path: Path, feeds: list[Feed], tmp: Path) -> dict[str, float]:
    """Share of kernel time per operator type over the batches."""
    s = session(path, 2, profile=str(tmp / "profile"))
    for f in feeds:
        s.run(["logits"], f)
    events = json.loads(Path(s.end_profiling()).read_text())
    times: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            times[e["args"]["op_name"]] += e["dur"]
    total = sum(times.values())
    return {op: round(100 * t / total, 1) for op, t in times.most_common(6)}


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    feeds, cache = capture(args)
    pairs = sum(f["input_ids"].shape[0] for f in feeds)
    print(
        f"{pairs} pairs in {len(feeds)} batches, max length {args.max_length}, load {os.getloadavg()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        variants = build_variants(cache, feeds, Path(tmp))
        reference = runner(cache / "model.onnx", feeds, dual=False)()
        for name, (path, dual) in variants.items():
            run = runner(path, feeds, dual)
            run()  # warm-up
            best = np.inf
            for _ in range(args.repeats):
                started = time.perf_counter()
                logits = run()
                best = min(best, time.perf_counter() - started)
            diff = float(np.abs(logits - reference).max())
            print(
                f"{name:16s} {pairs / best:7.2f} pairs/s   max|diff| vs fp32 {diff:.3f}", flush=True
            )
        if args.profile:
            for name in ("fp32", "int8"):
                print(f"{name} op time %: {op_profile(variants[name][0], feeds, Path(tmp))}")
    print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
