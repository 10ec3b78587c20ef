"""Other CPU runtimes for int8: do OpenVINO or torch beat ONNX Runtime's int8 on this CPU?

Runs the onnx backend's own length-bucketed batches (see ``int8_variants.py``) through:

- ``ort-fp32`` / ``ort-int8``: ONNX Runtime with crossrank's cached graphs (the ``onnx`` and
  ``onnx-int8`` backends: fused attention, CLS-only last layer, dynamic per-channel int8);
- ``ov-fp32``: OpenVINO's CPU plugin compiling the same fp32 graph;
- ``ov-int8``: OpenVINO on a static QDQ copy of that graph (MatMul and Attention inputs
  quantised, activation ranges calibrated on every 4th batch), which OpenVINO runs as int8;
- ``ov-int8-unfused``: the same for the graph without attention fusion, with the attention
  products (Q·Kᵀ, attention·V) quantised too;
- ``torch-fp32`` / ``torch-int8``: crossrank's torch backend (CLS-only last layer), and the
  same with ``torch.ao.quantization.quantize_dynamic`` on every Linear (qint8, x86 engine).

Also times sentence-transformers' ``CrossEncoder.predict`` on the same pairs, the reference of
issue 3's bars. Prints pairs/s (best of ``--repeats`` after a warm-up), the ratio to
sentence-transformers, the largest |logit difference| to ``ort-fp32`` and, for OpenVINO, how
many of the matrix products ran in int8/uint8.

Needs ``pip install openvino`` (not a crossrank dependency). Usage:
    cd benchmarks && python int8_runtimes.py --model <fp32 HF dir> --queries 3 --max-length 256
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov
import torch
from onnx import TensorProto
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from crossrank import CrossEncoder
from crossrank.inference.tokenize import TokenBatch
from engine_vs_st import st_scorer
from int8_variants import Feed, add_workload_args, capture, runner, unfused, workload

Run = Callable[[], np.ndarray]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_args(p, queries=3)
    return p.parse_args()


def qdq(source: Path, out: Path, feeds: list[Feed], *, activations_too: bool) -> Path:
    """Static QDQ int8 copy of ``source``; ``activations_too`` also quantises x·y products."""

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(feeds[::4])

        def get_next(self) -> Feed | None:
            return next(self.feeds, None)

    # ONNX shape inference first, so the quantiser sees more tensor types. It still skips a few
    # behind ORT's contrib ops; the printed count says how many products ran in int8.
    inferred = out.with_suffix(".inferred.onnx")
    quant_pre_process(str(source), str(inferred), skip_optimization=True, skip_symbolic_shape=True)
    quantize_static(
        str(inferred),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Attention"],
        extra_options={
            "DefaultTensorType": TensorProto.FLOAT,
            "MatMulConstBOnly": not activations_too,
        },
    )
    return out


def openvino_run(path: Path, feeds: list[Feed]) -> tuple[Run, str]:
    """A runner over ``feeds`` on OpenVINO's CPU plugin, and how many products run in int8."""
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(path)),
        "CPU",
        {
            "INFERENCE_NUM_THREADS": 2,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        },
    )
    request = compiled.create_infer_request()
    names = [i.get_any_name() for i in compiled.inputs]
    output = compiled.outputs[0]
    # Which matrix products the plugin executes in int8/uint8 (its runtime graph says).
    products = collections.Counter(
        str(op.get_rt_info()["runtimePrecision"].astype(str))
        for op in compiled.get_runtime_model().get_ops()
        if str(op.get_rt_info()["layerType"].astype(str)) in ("FullyConnected", "MatMul")
    )
    low = products["i8"] + products["u8"]

    def run() -> np.ndarray:
        return np.concatenate(
            [request.infer({n: f[n] for n in names})[output].reshape(-1, 1).copy() for f in feeds]
        )

    return run, f"{low} of {sum(products.values())} matrix products in int8/uint8"


def torch_run(args: argparse.Namespace, feeds: list[Feed], *, int8: bool) -> Run:
    encoder = CrossEncoder.from_pretrained(args.model, backend="torch", max_length=args.max_length)
    backend = encoder._engine.backend  # the benchmark looks inside on purpose
    if int8:
        backend._model.module = torch.ao.quantization.quantize_dynamic(
            backend._model.module, {torch.nn.Linear}, dtype=torch.qint8
        )
    batches = [TokenBatch(f["input_ids"], f["attention_mask"], f["token_type_ids"]) for f in feeds]

    def run() -> np.ndarray:
        with torch.inference_mode():
            return np.concatenate([backend.forward(b).reshape(-1, 1) for b in batches])

    return run


def best_seconds(run: Run, repeats: int) -> tuple[float, np.ndarray]:
    logits = run()  # warm-up
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        logits = run()
        best = min(best, time.perf_counter() - started)
    return best, logits


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    pairs = workload(args)
    feeds, cache = capture(args)
    print(f"{len(pairs)} pairs, max length {args.max_length}, load {os.getloadavg()}", flush=True)
    predict = st_scorer(args.model, "cpu", args.max_length)
    st_seconds, _ = best_seconds(lambda: predict(pairs), args.repeats)
    print(f"{'sentence-transformers':22s} {len(pairs) / st_seconds:7.2f} pairs/s", flush=True)
    reference = runner(cache / "model.onnx", feeds, dual=False)()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        variants: dict[str, Callable[[], tuple[Run, str]]] = {
            "ort-fp32": lambda: (runner(cache / "model.onnx", feeds, dual=False), ""),
            "ort-int8": lambda: (runner(cache / "model.int8.onnx", feeds, dual=False), ""),
            "ov-fp32": lambda: openvino_run(cache / "model.onnx", feeds),
            "ov-int8": lambda: openvino_run(
                qdq(cache / "model.onnx", work / "qdq.onnx", feeds, activations_too=False), feeds
            ),
            "ov-int8-unfused": lambda: openvino_run(
                qdq(
                    unfused(args.model, work / "unfused.onnx"),
                    work / "unfused.qdq.onnx",
                    feeds,
                    activations_too=True,
                ),
                feeds,
            ),
            "torch-fp32": lambda: (torch_run(args, feeds, int8=False), ""),
            "torch-int8": lambda: (torch_run(args, feeds, int8=True), ""),
        }
        for name, build in variants.items():
            if args.variants and name not in args.variants:
                continue
            run, note = build()
            seconds, logits = best_seconds(run, args.repeats)
            diff = float(np.abs(logits.reshape(reference.shape) - reference).max())
            print(
                f"{name:22s} {len(pairs) / seconds:7.2f} pairs/s  {st_seconds / seconds:5.2f}x ST"
                f"  max|diff| vs ort-fp32 {diff:.3f}  {note}",
                flush=True,
            )
    print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
