#!/usr/bin/env bash
# A short GPU call that trains nothing: the engine and trainer figures of issues 3 and 4 with
# crossrank's GPU defaults (no cuDNN attention, expanded padding masks), and what each changes.
#
#   0. the CUDA-only unit tests (sync-free forward stream, expanded masks, pipelined engine);
#   1. benchmarks/engine_timeline.py --skip-precision: the engine's pairs/s under settings
#      variants (first chunk, chunk size, prefetch, token budget, cuDNN attention allowed or
#      not), a per-thread timeline of one call, and the host-device syncs of one call; again
#      with the tokeniser's thread pool at 12 of the 16 cores (first six variants), and with a
#      GIL switch interval of 0.5 ms instead of 5 (first four);
#   2. benchmarks/engine_vs_st.py at 256 and 512: crossrank torch / torch-bf16 against
#      sentence-transformers' predict in the same process (the issue 3 bar); at 512 again with
#      RAYON_NUM_THREADS=12 (both libraries' tokenisers then use 12 threads);
#   3. benchmarks/train_throughput.py (bf16, max length 512, 16 groups of 8 per step) with
#      crossrank's default and with --cudnn-attention (the issue 4 bar).
#
# Inputs: DATA=.gpu/scifact (a BEIR copy) and .whl/ as for gpu_session.sh; MODEL, the shipped
# crossrank/minilm-scifact-v3 by default, upcast to fp32 here, is also the training backbone
# (throughput does not depend on the weights), so no fp32 backbone has to travel. About six
# minutes on an H200 (each step has its own timeout, 575 s in all): run it with
#   set -o pipefail; OUT=$OUT bash benchmarks/gpu_probe.sh 2>&1 | tee $OUT/probe.log
# carrying .gpu/scifact and .whl, with only minilm-scifact-v3 left under src/crossrank/weights/.
# Dry run on CPU (slow: the timeouts cut it short): DEVICE=cpu FEED_BACKEND=torch
# BENCH_BACKENDS=torch QUERIES=1 TP_STEPS=2 benchmarks/gpu_probe.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out-gpu}
DATA=${DATA:-.gpu/scifact}
DEVICE=${DEVICE:-cuda}
W=${WORK:-/tmp/crossrank-probe}
rm -rf "$W" && mkdir -p "$W" "$OUT"
# The shipped weights are fp16; sentence-transformers would load (and run) them so. Both
# libraries get an fp32 copy (gpu_setup.sh), as in the earlier runs on fp32 training outputs.
UPCAST=$(realpath "${MODEL:-src/crossrank/weights/minilm-scifact-v3}")
source benchmarks/gpu_setup.sh
data_abs=$(realpath "$DATA")
Q=${QUERIES:-40}

if [ "$DEVICE" = cuda ] && python3 -c "import pytest" 2>/dev/null; then
    echo "[$(date +%T)] 0. CUDA unit tests"
    timeout 90 python3 -m pytest -q -p no:cacheprovider -k cuda tests/inference/test_torch_backend.py \
        tests/inference/test_pipelined.py tests/models/test_padding_mask.py 2>&1 | tail -8 \
        | tee "$OUT/cuda_tests.log"
fi

echo "[$(date +%T)] 1. engine timeline"
( cd benchmarks && timeout 100 python3 engine_timeline.py --data "$data_abs" --model "$BACKBONE" \
    --backend "${FEED_BACKEND:-torch-bf16}" --device "$DEVICE" --queries "$Q" --skip-precision ) \
    2>&1 | grep -v Warning | tee "$OUT/engine_timeline.log"
( cd benchmarks && RAYON_NUM_THREADS=12 timeout 60 python3 engine_timeline.py --data "$data_abs" \
    --model "$BACKBONE" --backend "${FEED_BACKEND:-torch-bf16}" --device "$DEVICE" \
    --queries "$Q" --skip-precision --variants 6 ) \
    2>&1 | grep -v Warning | tee "$OUT/engine_timeline_rayon12.log"
( cd benchmarks && timeout 45 python3 engine_timeline.py --data "$data_abs" --model "$BACKBONE" \
    --backend "${FEED_BACKEND:-torch-bf16}" --device "$DEVICE" --queries "$Q" --skip-precision \
    --variants 4 --switch-interval 0.0005 ) 2>&1 | grep -v Warning | tee "$OUT/engine_timeline_switch.log"

echo "[$(date +%T)] 2. engine vs sentence-transformers"
backends=${BENCH_BACKENDS:-torch torch-bf16}
timeout 120 python3 benchmarks/engine_vs_st.py --device "$DEVICE" --data "$DATA" --queries "$Q" \
    --max-length 256 512 --model "$BACKBONE" --threads 8 --backends $backends --repeats 3 \
    --json "$OUT/engine_gpu.json" 2>&1 | grep -v Warning | tee "$OUT/engine_gpu.log"
RAYON_NUM_THREADS=12 timeout 70 python3 benchmarks/engine_vs_st.py --device "$DEVICE" \
    --data "$DATA" --queries "$Q" --max-length 512 --model "$BACKBONE" --threads 8 \
    --backends "${FEED_BACKEND:-torch-bf16}" --repeats 3 --json "$OUT/engine_gpu_rayon12.json" 2>&1 \
    | grep -v Warning | tee "$OUT/engine_gpu_rayon12.log"

for flag in "" --cudnn-attention; do
    echo "[$(date +%T)] 3. training throughput vs CrossEncoderTrainer ${flag:-(default)}"
    timeout 90 python3 benchmarks/train_throughput.py --data "$DATA" --backbone "$BACKBONE" \
        --steps "${TP_STEPS:-60}" --warmup 5 --groups-per-step 16 --max-length 512 --chunk-tokens 0 \
        --device "$DEVICE" $flag --json "$OUT/train_throughput${flag}.json" 2>&1 | grep -v Warning | tail -25
done
echo "[$(date +%T)] done"
