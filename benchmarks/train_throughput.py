"""Training throughput: crossrank's trainer vs sentence-transformers' CrossEncoderTrainer.

Both train the same backbone (all-MiniLM-L6-v2 with a fresh 1-logit head) on the same groups
(SciFact train queries, the judged positive plus 7 BM25 negatives from the top 30), with the
same max length, groups per step, learning-rate schedule, precision and number of steps, in
one process, one after the other (``--rounds`` alternates them to even out machine drift).
sentence-transformers uses its listwise ListNetLoss on (query, [docs], [labels]) rows, whole
batch in one forward; crossrank uses group softmax cross-entropy, length-bucketed batches and
length-sorted forward chunks of ``--chunk-tokens`` padded tokens. Pairs/s counts
(query, document) pairs over the timed steps (after ``--warmup`` untimed steps).

Usage:
    python benchmarks/train_throughput.py --steps 20 --groups-per-step 2         # CPU
    python benchmarks/train_throughput.py --steps 200 --groups-per-step 16 --chunk-tokens 16384  # GPU
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
from sentence_transformers.cross_encoder.losses import ListNetLoss
from transformers import TrainerCallback

from crossrank.data.beir import load_collection
from crossrank.models.cls_only import uninstall_cls_only
from crossrank.models.cpu_dropout import uninstall_cpu_dropout
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.retrieval.encoder import resolve_model_path
from crossrank.training.config import (
    DataConfig,
    ModelConfig,
    OutputConfig,
    StageConfig,
    TrainConfig,
)
from crossrank.training.data import GroupSet, build_stage_groups
from crossrank.training.distributed import DistContext, resolve_device
from crossrank.training.pipeline import build_cross_encoder, make_plan
from crossrank.training.trainer import StageEvent, Trainer
from st_common import groups_dataset, training_arguments

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact"
GROUP_SIZE = 8
LR = 2e-5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--backbone", default="all-MiniLM-L6-v2")
    parser.add_argument("--steps", type=int, default=20, help="timed + warmup steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--groups-per-step", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument(
        "--chunk-tokens",
        type=int,
        default=2048,
        help="crossrank: padded tokens per forward chunk (0: one forward per micro-batch; "
        "2048 is configs/scifact-cpu.toml's, 16384 configs/scifact-gpu-v2.toml's)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternate ST/crossrank N times")
    parser.add_argument(
        "--prefetch",
        type=int,
        default=2,
        help="crossrank: steps prepared ahead on a background thread (0: none)",
    )
    parser.add_argument(
        "--no-cls-only",
        action="store_true",
        help="crossrank: run the full last layer (the CLS-only rewrite off), to measure it",
    )
    parser.add_argument(
        "--no-cpu-dropout",
        action="store_true",
        help="crossrank: PyTorch's dropout and SDPA attention (crossrank.models.cpu_dropout off)",
    )
    parser.add_argument(
        "--cudnn-attention",
        action="store_true",
        help="crossrank: let SDPA use cuDNN's attention on CUDA (crossrank's default leaves it "
        "out: profiled, it spent ~20 ms of host time per call on an H200)",
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--precision", choices=("fp32", "bf16"), help="default: bf16 on CUDA")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args()


def build_groups(data: Path) -> GroupSet:
    collection = load_collection(data, "train")
    bm25 = BM25Retriever.build(collection.corpus)
    stage = StageConfig("bench", "train_qrels", group_size=GROUP_SIZE, negative_depth=30)
    return build_stage_groups(
        stage,
        corpus=collection.corpus,
        queries=collection.queries,
        qrels=collection.qrels,
        retrieve=bm25.retrieve,
        seed=0,
    )


def pairs_per_s(stamps: list[float], pairs_per_step: float, warmup: int) -> float:
    """Throughput between the end of the last warmup step and the end of the last step."""
    timed = len(stamps) - warmup
    return timed * pairs_per_step / (stamps[-1] - stamps[warmup - 1])


def stamp_now(times: list[float], warmup: int, steps: int) -> None:
    """Append the time at the end of step ``len(times) + 1``.

    The GPU is waited for only at the two steps ``pairs_per_s`` reads (the last warm-up step and
    the last step): a wait after every step would stop either trainer from queueing the next
    step's work while the GPU runs, which real training does not do.
    """
    if len(times) + 1 in (warmup, steps) and torch.cuda.is_available():
        torch.cuda.synchronize()
    times.append(time.perf_counter())


class _Stamps(TrainerCallback):
    def __init__(self, warmup: int, steps: int) -> None:
        self.times: list[float] = []
        self.warmup, self.steps = warmup, steps

    def on_step_end(self, args, state, control, **kwargs) -> None:  # HF callback signature
        stamp_now(self.times, self.warmup, self.steps)


def run_sentence_transformers(args: argparse.Namespace, groups: GroupSet, precision: str) -> float:
    device = str(resolve_device(args.device))
    model = STCrossEncoder(
        resolve_model_path(args.backbone), num_labels=1, max_length=args.max_length, device=device
    )
    dataset = groups_dataset(groups, listwise=True)
    stamps = _Stamps(args.warmup, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        training_args = training_arguments(
            tmp,
            batch_size=args.groups_per_step,
            lr=LR,
            device=device,
            bf16=precision == "bf16",
            max_steps=args.steps,
            drop_last=True,
        )
        trainer = CrossEncoderTrainer(
            model=model,
            args=training_args,
            train_dataset=dataset,
            loss=ListNetLoss(model, mini_batch_size=-1),  # the whole batch in one forward
            callbacks=[stamps],
        )
        trainer.train()
    return pairs_per_s(stamps.times, _pairs_per_step(groups, args), args.warmup)


def run_crossrank(args: argparse.Namespace, groups: GroupSet, precision: str) -> float:
    ctx = DistContext.single(str(resolve_device(args.device)))
    config = TrainConfig(
        stages=(
            StageConfig(
                "bench",
                "train_qrels",
                group_size=GROUP_SIZE,
                lr=LR,
                groups_per_step=args.groups_per_step,
                max_steps=args.steps,
            ),
        ),
        precision=precision,
        model=ModelConfig(
            backbone=args.backbone,
            max_length=args.max_length,
            max_query_length=min(64, args.max_length // 2),
            chunk_tokens=args.chunk_tokens or None,
        ),
        data=DataConfig(path=str(args.data), dev_split=""),
        output=OutputConfig(checkpoint_every=10**9, log_every=10**9),
    )
    model = build_cross_encoder(config.model, seed=42, device_type=ctx.device.type)
    if args.no_cls_only:
        uninstall_cls_only(model.encoder)
        model.cls_only = False
    if args.no_cpu_dropout:
        uninstall_cpu_dropout(model.encoder)
        model.cpu_dropout = False
    plans = [make_plan(config.stages[0], groups, model)]
    times: list[float] = []

    def stamp(_: StageEvent) -> None:
        stamp_now(times, args.warmup, args.steps)

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, plans, config, out_dir=Path(tmp), ctx=ctx, callbacks=[stamp],
                          quiet=True, prefetch=args.prefetch,
                          cudnn_attention=args.cudnn_attention)  # fmt: skip
        trainer.fit()
    return pairs_per_s(times, _pairs_per_step(groups, args), args.warmup)


def _pairs_per_step(groups: GroupSet, args: argparse.Namespace) -> float:
    return groups.num_pairs() / len(groups) * args.groups_per_step


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    load_before = os.getloadavg()
    groups = build_groups(args.data)
    results: dict[str, list[float]] = {"sentence_transformers": [], "crossrank": []}
    for _ in range(args.rounds):
        results["sentence_transformers"].append(run_sentence_transformers(args, groups, precision))
        results["crossrank"].append(run_crossrank(args, groups, precision))
    st, cr = (float(np.mean(v)) for v in results.values())
    summary = {
        "device": str(device),
        "precision": precision,
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "warmup": args.warmup,
        "groups_per_step": args.groups_per_step,
        "group_size": GROUP_SIZE,
        "max_length": args.max_length,
        "chunk_tokens": args.chunk_tokens,
        "prefetch": args.prefetch,
        "cls_only": not args.no_cls_only,
        "cpu_dropout": not args.no_cpu_dropout,
        "cudnn_attention": args.cudnn_attention,
        "pairs_per_s": results,
        "ratio_crossrank_over_st": cr / st,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
