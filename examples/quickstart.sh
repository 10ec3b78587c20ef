#!/usr/bin/env bash
# Quickstart on the tiny example collection that ships in examples/tiny:
# first-stage retrieval (BM25, dense, hybrid), then evaluation with significance against BM25.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
out=${OUT:-runs/quickstart}
mkdir -p "$out"
for retriever in bm25 dense hybrid; do
  crossrank retrieve --data examples/tiny --split test --retriever "$retriever" --top-k 10 \
    --out "$out/$retriever.run" --quiet
done
crossrank evaluate --data examples/tiny --split test --run "$out/hybrid.run" --also "$out/dense.run" \
  --baseline "$out/bm25.run" --metrics nDCG@10 RR@10 R@10 --json "$out/metrics.json"
