#!/usr/bin/env bash
# A short GPU call: the scoring engine with CUDA graphs (TorchBackend(cuda_graphs=True)) against
# its eager default and sentence-transformers, after gpu_probe.sh found the host's kernel
# launches (~7 ms a batch) to be what keeps tokenising and the GPU from overlapping.
#
#   0. the CUDA-only unit tests (graph replay = eager logits, no per-batch sync, masks);
#   1. benchmarks/engine_timeline.py --cuda-graphs --skip-precision: settings variants, a
#      per-thread timeline and the host-device syncs of one call, with graphs;
#   2. benchmarks/engine_vs_st.py --cuda-graphs at 256 and 512: sentence-transformers, crossrank
#      torch / torch-bf16 as they are by default, and each with CUDA graphs.
#
# Inputs as for gpu_probe.sh (DATA=.gpu/scifact, .whl/, MODEL the shipped v3, upcast to fp32).
# About three minutes on an H200 (timeouts 300 s in all):
#   set -o pipefail; OUT=$OUT bash benchmarks/gpu_graphs.sh 2>&1 | tee $OUT/graphs.log
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out-gpu}
DATA=${DATA:-.gpu/scifact}
W=${WORK:-/tmp/crossrank-graphs}
rm -rf "$W" && mkdir -p "$W" "$OUT"
# The shipped weights are fp16; sentence-transformers would load (and run) them so. Both
# libraries get an fp32 copy (gpu_setup.sh), as in the earlier runs on fp32 training outputs.
UPCAST=$(realpath "${MODEL:-src/crossrank/weights/minilm-scifact-v3}")
source benchmarks/gpu_setup.sh
data_abs=$(realpath "$DATA")
Q=${QUERIES:-40}

echo "[$(date +%T)] 0. CUDA unit tests"
timeout 60 python3 -m pytest -q -p no:cacheprovider -k cuda -x tests/inference/test_cuda_graphs.py \
    tests/inference/test_torch_backend.py tests/models/test_padding_mask.py 2>&1 | tail -30 \
    | tee "$OUT/cuda_tests.log"

echo "[$(date +%T)] 1. engine timeline with CUDA graphs"
( cd benchmarks && timeout 80 python3 engine_timeline.py --data "$data_abs" --model "$BACKBONE" \
    --backend torch-bf16 --device cuda --queries "$Q" --skip-precision --cuda-graphs ) \
    2>&1 | grep -v Warning | tee "$OUT/engine_timeline_graphs.log"

echo "[$(date +%T)] 2. engine vs sentence-transformers, with and without CUDA graphs"
timeout 150 python3 benchmarks/engine_vs_st.py --device cuda --data "$DATA" --queries "$Q" \
    --max-length 256 512 --model "$BACKBONE" --threads 8 --backends torch torch-bf16 \
    --cuda-graphs --repeats 3 --json "$OUT/engine_gpu_graphs.json" 2>&1 | grep -v Warning \
    | tee "$OUT/engine_gpu_graphs.log"
echo "[$(date +%T)] done"
