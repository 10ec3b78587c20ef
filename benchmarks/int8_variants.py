"""ONNX Runtime int8 variants on the engine's own batches: what is (and is not) faster on this CPU.

Scores the first ``--queries`` SciFact dev queries x BM25 top-100 once with crossrank's onnx
backend to capture the exact length-bucketed batches it runs, then times bare
``InferenceSession.run`` over those batches for each variant (best of ``--repeats``, after a
warm-up), printing pairs/s and the largest |logit difference| to the fp32 graph:

- ``fp32`` / ``int8``: crossrank's cached graphs (the ``onnx`` and ``onnx-int8`` backends);
- ``fp32-2x1`` / ``int8-2x1``: two 1-thread sessions fed alternate batches from two threads;
- ``int8-u8u8``: uint8 instead of int8 weights;
- ``int8-per-tensor``: one scale per weight matrix instead of per output channel;
- ``int8-static``: static QDQ quantisation, activation ranges calibrated on every 8th batch;
- ``int8-unfused``: dynamic int8 of a graph exported without ORT's attention fusion, so the
  attention products (Q·Kᵀ, attention·V) are int8 too; ``fp32-unfused`` is that graph in fp32.

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
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.transformers import optimizer
from onnxruntime.transformers.fusion_options import FusionOptions

from crossrank import CrossEncoder
from crossrank.inference.backends import onnx_export
from crossrank.inference.tokenize import TokenBatch
from crossrank.models.cross_encoder import CrossEncoderModel
from engine_vs_st import DEFAULT_DATA, bm25_candidates, load_scifact

Feed = dict[str, np.ndarray]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_args(p, queries=5)
    p.add_argument("--profile", action="store_true")
    return p.parse_args()


def add_workload_args(p: argparse.ArgumentParser, *, queries: int) -> None:
    """The options this script shares with int8_runtimes.py: model, pairs, timing, variants."""
    p.add_argument("--model", type=Path, required=True, help="fp32 Hugging Face directory")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--queries", type=int, default=queries)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--variants", nargs="+", help="only these (default: all)")


def workload(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The first ``args.queries`` dev queries x their BM25 top 100, as (query, document) texts."""
    corpus, queries, _ = load_scifact(args.data)
    queries = dict(list(queries.items())[: args.queries])
    return [(queries[q], corpus[d]) for q, d in bm25_candidates(corpus, queries, 100)]


def capture(args: argparse.Namespace) -> tuple[list[Feed], Path]:
    """The onnx backend's batches for the workload, and its cache directory."""
    pairs = workload(args)
    encoder = CrossEncoder.from_pretrained(args.model, backend="onnx", max_length=args.max_length)
    backend = encoder._engine.backend  # the benchmark looks inside on purpose
    seen: list[TokenBatch] = []
    backend.forward_stream = lambda batches: [seen.append(b) or backend.forward(b) for b in batches]
    encoder.predict(pairs)
    # The onnx-int8 backend's graph, model.int8.onnx, into the same cache directory.
    CrossEncoder.from_pretrained(args.model, backend="onnx-int8", max_length=args.max_length)
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


def unfused(model_dir: Path, out: Path) -> Path:
    """The fp32 graph with every ORT fusion but attention's (the benchmark looks inside)."""
    model = CrossEncoderModel.from_pretrained(model_dir)
    raw = out.with_suffix(".raw.onnx")
    onnx_export._torch_export(model, raw)
    options = FusionOptions("bert")
    options.enable_attention = False
    config = model.config
    graph = optimizer.optimize_model(
        str(raw),
        model_type="bert",
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        opt_level=0,
        optimization_options=options,
    ).model
    if not any(o.domain == "com.microsoft" for o in graph.opset_import):
        graph.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(graph, str(out))
    return out


def build_variants(
    cache: Path, feeds: list[Feed], tmp: Path, model_dir: Path, names: set[str] | None
) -> dict[str, tuple[Path, bool]]:
    fp32, int8 = cache / "model.onnx", cache / "model.int8.onnx"
    dynamic = {
        "op_types_to_quantize": ["MatMul", "Attention"],
        "extra_options": {"DefaultTensorType": TensorProto.FLOAT},
    }

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(feeds[::8])

        def get_next(self) -> Feed | None:
            return next(self.feeds, None)

    def u8u8() -> Path:
        path = tmp / "u8u8.onnx"
        quantize_dynamic(fp32, path, per_channel=True, weight_type=QuantType.QUInt8, **dynamic)
        return path

    def per_tensor() -> Path:
        path = tmp / "tensor.onnx"
        quantize_dynamic(fp32, path, per_channel=False, weight_type=QuantType.QInt8, **dynamic)
        return path

    def static() -> Path:
        path = tmp / "static.onnx"
        quantize_static(
            fp32,
            path,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            **dynamic,
        )
        return path

    def fp32_unfused() -> Path:
        path = tmp / "unfused.onnx"
        return path if path.is_file() else unfused(model_dir, path)

    def int8_unfused() -> Path:
        path = tmp / "unfused.int8.onnx"
        quantize_dynamic(
            fp32_unfused(),
            path,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
            # Activation x activation MatMuls too: the attention products.
            extra_options={"DefaultTensorType": TensorProto.FLOAT, "MatMulConstBOnly": False},
        )
        return path

    builders: dict[str, tuple[Callable[[], Path], bool]] = {
        "fp32": (lambda: fp32, False),
        "fp32-2x1": (lambda: fp32, True),
        "int8": (lambda: int8, False),
        "int8-2x1": (lambda: int8, True),
        "int8-u8u8": (u8u8, False),
        "int8-per-tensor": (per_tensor, False),
        "int8-static": (static, False),
        "fp32-unfused": (fp32_unfused, False),
        "int8-unfused": (int8_unfused, False),
    }
    chosen = [n for n in builders if names is None or n in names]
    return {n: (builders[n][0](), builders[n][1]) for n in chosen}


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
        names = set(args.variants) if args.variants else None
        variants = build_variants(cache, feeds, Path(tmp), args.model, names)
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
                if name in variants:
                    print(f"{name} op time %: {op_profile(variants[name][0], feeds, Path(tmp))}")
    print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
