#!/usr/bin/env bash
# A short GPU call that trains nothing: where the engine's and the trainer's time goes.
#
#   1. benchmarks/engine_timeline.py: the engine's pairs/s in fp32, bf16 and bf16 mixed, and
#      under settings variants (first chunk, chunk size, prefetch, token budget, cuDNN
#      attention allowed or not), then a per-thread timeline of one call; again with the
#      tokeniser's thread pool at 12 of the 16 cores (first four variants);
#   2. benchmarks/train_throughput.py twice, as in gpu_session.sh (bf16, max length 512, 16
#      groups of 8 per step), with and without --no-cudnn-attention;
#   3. benchmarks/train_profile.py: torch.profiler over crossrank's trainer steps.
#
# Inputs: DATA=.gpu/scifact (a BEIR copy) and .whl/ as for gpu_session.sh; MODEL, the shipped
# crossrank/minilm-scifact-v3 by default, is also the training backbone (the bench trains
# from it; throughput does not depend on the weights), so no fp32 backbone has to travel.
# About five minutes on an H200 (each step has its own timeout; 490 s at most): run it with
#   set -o pipefail; OUT=$OUT bash benchmarks/gpu_probe.sh 2>&1 | tee $OUT/probe.log
# carrying .gpu/scifact and .whl, with only minilm-scifact-v3 left under src/crossrank/weights/.
# Dry run on CPU: DEVICE=cpu FEED_BACKEND=torch PRECISION=fp32 QUERIES=2 benchmarks/gpu_probe.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out-gpu}
DATA=${DATA:-.gpu/scifact}
DEVICE=${DEVICE:-cuda}
W=${WORK:-/tmp/crossrank-probe}
rm -rf "$W" && mkdir -p "$W" "$OUT"
BACKBONE=$(realpath "${MODEL:-src/crossrank/weights/minilm-scifact-v3}")
source benchmarks/gpu_setup.sh
data_abs=$(realpath "$DATA")

echo "[$(date +%T)] 1. engine timeline"
( cd benchmarks && timeout 120 python3 engine_timeline.py --data "$data_abs" --model "$BACKBONE" \
    --backend "${FEED_BACKEND:-torch-bf16}" --device "$DEVICE" --queries "${QUERIES:-40}" ) \
    2>&1 | grep -v Warning | tee "$OUT/engine_timeline.log"
# The tokeniser's Rust pool takes every core by default; with 12 of 16, do the kernel launches
# of the main thread (which the timeline shows slowed to ~20 ms a batch) speed up?
( cd benchmarks && RAYON_NUM_THREADS=12 timeout 60 python3 engine_timeline.py --data "$data_abs" \
    --model "$BACKBONE" --backend "${FEED_BACKEND:-torch-bf16}" --device "$DEVICE" \
    --queries "${QUERIES:-40}" --skip-precision --variants 4 ) \
    2>&1 | grep -v Warning | tee "$OUT/engine_timeline_rayon12.log"
for flag in "" --no-cudnn-attention; do
    echo "[$(date +%T)] 2. training throughput vs CrossEncoderTrainer ${flag:-(default)}"
    timeout 100 python3 benchmarks/train_throughput.py --data "$DATA" --backbone "$BACKBONE" \
        --steps "${TP_STEPS:-60}" --warmup 5 --groups-per-step 16 --max-length 512 --chunk-tokens 0 \
        --device "$DEVICE" $flag --json "$OUT/train_throughput${flag}.json" 2>&1 | grep -v Warning | tail -25
done
echo "[$(date +%T)] 3. trainer profile"
timeout 110 python3 benchmarks/train_profile.py --data "$DATA" --backbone "$BACKBONE" \
    --steps 25 --warmup 5 --groups-per-step 16 --max-length 512 --chunk-tokens 0 \
    --device "$DEVICE" --precision "${PRECISION:-bf16}" 2>&1 | grep -v Warning | tee "$OUT/train_profile.log"
echo "[$(date +%T)] done"
