"""MaxP for the long documents of an existing full-length rerank run, without re-scoring the rest.

Pairs whose query + document fit in ``--max-length`` tokens get the same score with or without
windows (a document shorter than one window is one pair), so only the pairs that were
truncated are re-scored, with windows of the whole room beside the query every ``--stride``
tokens and MaxP. The merged run equals ``crossrank rerank --passages 512,STRIDE --aggregate
maxp`` on the same candidates, at a fraction of the cost.

Usage:
    python benchmarks/maxp_tail.py --data ../shared/data/scifact --split dev \
        --run runs/ship/minilm-scifact.dev.run --stride 256 --out runs/ship/minilm-scifact-maxp256.dev.run
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crossrank import CrossEncoder
from crossrank.data.beir import load_collection
from crossrank.data.trec import read_run, write_run
from crossrank.evaluation import evaluate
from crossrank.inference.passages import PassageConfig
from crossrank.models.registry import DEFAULT_RERANKER


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--run", type=Path, required=True, help="full-length rerank run")
    parser.add_argument("--model", default=DEFAULT_RERANKER)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--stride", type=int, default=256)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    collection = load_collection(args.data, args.split)
    base = read_run(args.run)
    ce = CrossEncoder.from_pretrained(args.model, backend=args.backend, max_length=args.max_length)
    ids = [(q, d) for q, docs in base.items() for d in docs]
    pairs = [(collection.queries[q].text, collection.corpus[d].full_text) for q, d in ids]
    counts = ce.count_tokens(pairs)
    long = [i for i, cut in enumerate(counts.truncated.tolist()) if cut]
    print(f"{len(long)} of {len(pairs)} pairs do not fit in {args.max_length} tokens")
    window = PassageConfig(window=args.max_length, stride=args.stride, aggregate="maxp")
    scores = ce.predict([pairs[i] for i in long], passages=window)
    print(ce.last_stats)
    run = {q: dict(docs) for q, docs in base.items()}
    for i, score in zip(long, scores.tolist(), strict=True):
        run[ids[i][0]][ids[i][1]] = score
    write_run(args.out, run)
    for name, r in (("full length", base), (f"MaxP stride {args.stride}", run)):
        print(f"{name}: nDCG@10 {evaluate(r, collection.qrels, ['nDCG@10']).means['nDCG@10']:.4f}")


if __name__ == "__main__":
    main()
