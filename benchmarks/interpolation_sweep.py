"""Pick the weight of a reranker's scores against the first stage's on a split (dev).

Fuses a model run with a first-stage run by per-query z-score interpolation
(``w * z(model) + (1 - w) * z(first stage)``, crossrank.retrieval.fusion.interpolate) for w
on a grid, prints nDCG@10 for each, and writes the fused run at the best weight. The weight
is chosen on the split it is scored on, so report it as "weight chosen on dev".

Usage:
    python benchmarks/interpolation_sweep.py --data ../shared/data/scifact --split dev \
        --first runs/bm25.dev.run --model runs/minilm-scifact.dev.run --out runs/interp.dev.run
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from crossrank.data.beir import read_qrels_tsv
from crossrank.data.trec import read_run, write_run
from crossrank.evaluation import evaluate
from crossrank.retrieval.fusion import interpolate


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--first", type=Path, required=True, help="first-stage run (BM25)")
    parser.add_argument("--model", type=Path, required=True, help="reranker run")
    parser.add_argument("--step", type=float, default=0.05, help="grid step of the weight")
    parser.add_argument("--metric", default="nDCG@10")
    parser.add_argument("--out", type=Path, help="fused run at the best weight")
    parser.add_argument("--json", type=Path, help="the sweep as JSON")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    qrels = read_qrels_tsv(args.data / "qrels" / f"{args.split}.tsv")
    first, model = read_run(args.first), read_run(args.model)
    grid = np.round(np.arange(0.0, 1.0 + 1e-9, args.step), 4).tolist()
    curve = {}
    for w in grid:
        fused = interpolate([model, first], [w, 1.0 - w], "zscore")
        curve[w] = float(evaluate(fused, qrels, [args.metric]).means[args.metric])
        print(f"w={w:.2f}  {args.metric}={curve[w]:.4f}")
    best = max(grid, key=lambda w: (curve[w], -abs(w - 0.5)))
    print(f"best w={best:.2f}: {args.metric}={curve[best]:.4f} (model alone {curve[1.0]:.4f}, "
          f"first stage alone {curve[0.0]:.4f})")  # fmt: skip
    if args.out:
        write_run(args.out, interpolate([model, first], [best, 1.0 - best], "zscore"), "interp")
    if args.json:
        args.json.write_text(json.dumps({"best_weight": best, "curve": curve}, indent=2) + "\n")


if __name__ == "__main__":
    main()
