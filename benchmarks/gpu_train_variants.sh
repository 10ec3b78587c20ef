#!/usr/bin/env bash
# GPU training throughput, one variant per row (issue 4): what forward chunking, the prefetch
# thread and the CLS-only last layer each cost on the GPU. Every row is one
# benchmarks/train_throughput.py run with its own sentence-transformers baseline (bf16, max
# length 512, 16 groups of 8 per step). Results go to $OUT/variants.jsonl after every row, so a
# cut-off run still returns what it measured.
#
#   OUT=... benchmarks/gpu_train_variants.sh     (inputs as for gpu_session.sh: .gpu/, .whl/)
#
# A row is "chunk_tokens prefetch cls_only", chunk_tokens 0 meaning one forward per micro-batch.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out-gpu}
DATA=${DATA:-.gpu/scifact}
W=${WORK:-/tmp/crossrank-gpu}
ROWS=${ROWS:-"0 2 on;0 0 on;0 0 off;16384 0 on"}
rm -rf "$W" && mkdir -p "$W" "$OUT"
source benchmarks/gpu_setup.sh
IFS=';' read -ra rows <<< "$ROWS"
for row in "${rows[@]}"; do
    read -r chunk prefetch cls <<< "$row"
    flag=""; [ "$cls" = off ] && flag="--no-cls-only"
    echo "[$(date +%T)] chunk_tokens=$chunk prefetch=$prefetch cls_only=$cls"
    timeout "${ROW_TIMEOUT:-90}" python3 benchmarks/train_throughput.py --data "$DATA" \
        --backbone "$BACKBONE" --steps "${STEPS:-60}" --warmup 5 --groups-per-step 16 \
        --max-length 512 --chunk-tokens "$chunk" --prefetch "$prefetch" $flag \
        --device "${DEVICE:-cuda}" --json "$W/row.json" > "$W/row.log" 2>&1 || { tail -5 "$W/row.log"; continue; }
    python3 -c "import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))" "$W/row.json" \
        | tee -a "$OUT/variants.jsonl"
done
