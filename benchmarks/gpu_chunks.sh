#!/usr/bin/env bash
# A short GPU call for the issue 3 bar (10x sentence-transformers at 512 in bf16): smaller chunks
# of pairs with a 32,768-token budget, which gpu_graphs.sh found fastest with CUDA graphs
# (10,108 pairs/s, against 8,463 for the defaults in that call), now timed beside
# sentence-transformers in the same process.
#
#   1. benchmarks/engine_timeline.py --st-baseline: sentence-transformers, then the default row
#      and the chunk-size / budget rows (0, 6 and 10-13), eagerly, with the timeline of row 6;
#   2. the same with --cuda-graphs;
#   3. benchmarks/engine_vs_st.py at 512: crossrank torch-bf16 by default and with CUDA graphs.
#
# Inputs as for gpu_probe.sh (DATA=.gpu/scifact, .whl/, MODEL the shipped v3, upcast to fp32).
# About four minutes on an H200 (timeouts 330 s in all):
#   set -o pipefail; OUT=$OUT bash benchmarks/gpu_chunks.sh 2>&1 | tee $OUT/chunks.log
# Dry run on CPU (step 2 stops with a clear error: graphs need CUDA):
#   DATA=../shared/data/scifact DEVICE=cpu BACKEND=torch QUERIES=1 MAXLEN=128 bash benchmarks/gpu_chunks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out-gpu}
DATA=${DATA:-.gpu/scifact}
DEVICE=${DEVICE:-cuda}
BACKEND=${BACKEND:-torch-bf16}
W=${WORK:-/tmp/crossrank-chunks}
rm -rf "$W" && mkdir -p "$W" "$OUT"
# The shipped weights are fp16; sentence-transformers would load (and run) them so. Both
# libraries get an fp32 copy (gpu_setup.sh), as in the earlier runs on fp32 training outputs.
UPCAST=$(realpath "${MODEL:-src/crossrank/weights/minilm-scifact-v3}")
source benchmarks/gpu_setup.sh
data_abs=$(realpath "$DATA")
Q=${QUERIES:-40}
L=${MAXLEN:-512}
rows=(--rows 0 6 10 11 12 13 --timeline-variant 6)

echo "[$(date +%T)] 1. chunk and budget rows, eager"
( cd benchmarks && timeout 100 python3 engine_timeline.py --data "$data_abs" --model "$BACKBONE" \
    --backend "$BACKEND" --device "$DEVICE" --queries "$Q" --max-length "$L" --skip-precision \
    --st-baseline "${rows[@]}" ) 2>&1 | grep -v Warning | tee "$OUT/chunks_eager.log"

echo "[$(date +%T)] 2. the same rows with CUDA graphs"
( cd benchmarks && timeout 100 python3 engine_timeline.py --data "$data_abs" --model "$BACKBONE" \
    --backend "$BACKEND" --device "$DEVICE" --queries "$Q" --max-length "$L" --skip-precision \
    --st-baseline --cuda-graphs "${rows[@]}" ) 2>&1 | grep -v Warning | tee "$OUT/chunks_graphs.log"

echo "[$(date +%T)] 3. engine vs sentence-transformers at $L"
graphs=$([ "$DEVICE" = cpu ] || echo --cuda-graphs)
timeout 130 python3 benchmarks/engine_vs_st.py --device "$DEVICE" --data "$DATA" --queries "$Q" \
    --max-length "$L" --model "$BACKBONE" --threads 8 --backends "$BACKEND" $graphs --repeats 3 \
    --json "$OUT/chunks_engine_vs_st.json" 2>&1 | grep -v Warning | tee "$OUT/chunks_engine_vs_st.log"
echo "[$(date +%T)] done"
