"""Accuracy of sentence-transformers' CrossEncoderTrainer on the data crossrank trains on.

The reference row of the SciFact accuracy table: the same backbone (all-MiniLM-L6-v2 with a
fresh 1-logit head), the same judged train queries with the same BM25 hard negatives as the
last stage of configs/scifact-gpu.toml (positive + 15 negatives from the top 30), trained with
sentence-transformers' own trainer and one of its losses, then scored on the dev split by
reranking BM25 top-100 with its ``predict``. Prints and writes nDCG@10 and the reranked run.

Usage (GPU, bf16):
    python benchmarks/st_trainer_accuracy.py --data ../shared/data/scifact --loss lambda \
        --epochs 3 --out runs/st-lambda
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers.cross_encoder import (
    CrossEncoder as STCrossEncoder,
)
from sentence_transformers.cross_encoder import (
    CrossEncoderTrainer,
)
from sentence_transformers.cross_encoder.losses import (
    BinaryCrossEntropyLoss,
    LambdaLoss,
    ListNetLoss,
)

from crossrank.data.beir import load_collection, load_queries, read_qrels_tsv
from crossrank.data.trec import write_run
from crossrank.evaluation import evaluate
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.retrieval.encoder import resolve_model_path
from crossrank.training.config import StageConfig
from crossrank.training.data import GroupSet, build_stage_groups
from st_common import groups_dataset, training_arguments

os.environ.setdefault("HF_HUB_OFFLINE", "1")
LOSSES = {"bce": BinaryCrossEntropyLoss, "lambda": LambdaLoss, "listnet": ListNetLoss}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--backbone", default="all-MiniLM-L6-v2")
    parser.add_argument("--loss", choices=sorted(LOSSES), default="lambda")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch-size", type=int, default=16, help="groups (lists) or pairs")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--max-groups", type=int, help="train on the first N groups (smoke runs)")
    parser.add_argument(
        "--max-queries", type=int, help="score the first N dev queries (smoke runs)"
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for run + json")
    return parser.parse_args()


def train_groups(data: Path, bm25: BM25Retriever) -> GroupSet:
    collection = load_collection(data, "train")
    stage = StageConfig("st", "train_qrels", group_size=16, negative_depth=30)
    return build_stage_groups(
        stage,
        corpus=collection.corpus,
        queries=collection.queries,
        qrels=collection.qrels,
        retrieve=bm25.retrieve,
        seed=44,  # the index of the last stage of scifact-gpu.toml (2) + its seed (42)
    )


def main() -> None:
    args = parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    collection = load_collection(args.data, "train")
    bm25 = BM25Retriever.build(collection.corpus)
    groups = train_groups(args.data, bm25)
    if args.max_groups:
        keep = slice(0, args.max_groups)
        groups = GroupSet(
            groups.queries[keep], groups.texts, groups.members[keep], groups.labels[keep]
        )
    dataset = groups_dataset(groups, listwise=args.loss != "bce")
    model = STCrossEncoder(
        resolve_model_path(args.backbone), num_labels=1, max_length=args.max_length, device=device
    )
    loss = LOSSES[args.loss](model)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        training_args = training_arguments(
            tmp,
            batch_size=args.batch_size,
            lr=args.lr,
            device=device,
            bf16=device == "cuda",
            epochs=args.epochs,
        )
        CrossEncoderTrainer(
            model=model, args=training_args, train_dataset=dataset, loss=loss
        ).train()
    train_seconds = time.perf_counter() - started
    run, ndcg = dev_ndcg(model, args)
    args.out.mkdir(parents=True, exist_ok=True)
    write_run(args.out / f"st-{args.loss}.dev.run", run, tag=f"st-{args.loss}")
    summary = {
        "loss": args.loss,
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "train_rows": len(dataset),
        "train_seconds": round(train_seconds, 1),
        "device": device,
        "dev_ndcg@10": ndcg,
    }
    (args.out / f"st-{args.loss}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def dev_ndcg(model: STCrossEncoder, args: argparse.Namespace) -> tuple[dict, float]:
    """Rerank BM25 top-k of the dev queries with ST's predict; nDCG@10 of the result."""
    collection = load_collection(args.data, "dev")
    qrels = read_qrels_tsv(args.data / "qrels" / "dev.tsv")
    queries = load_queries(args.data / "queries.jsonl")
    texts = {q: queries[q].text for q in list(qrels)[: args.max_queries]}
    qrels = {q: qrels[q] for q in texts}
    first = BM25Retriever.build(collection.corpus).retrieve(texts, args.top_k)
    ids = [(q, d) for q, docs in first.items() for d in docs]
    pairs = [(texts[q], collection.corpus[d].full_text) for q, d in ids]
    scores = np.asarray(model.predict(pairs, batch_size=128, show_progress_bar=False))
    run: dict[str, dict[str, float]] = {}
    for (q, d), s in zip(ids, scores.tolist(), strict=True):
        run.setdefault(q, {})[d] = float(s)
    return run, float(evaluate(run, qrels, ["nDCG@10"]).means["nDCG@10"])


if __name__ == "__main__":
    main()
