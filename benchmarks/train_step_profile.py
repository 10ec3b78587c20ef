"""Where one CPU training step of the MiniLM cross-encoder goes, and whether torch.compile helps.

One forward + backward of all-MiniLM-L6-v2 with a 1-logit head, in training mode (dropout on,
as the backbone's config sets it), through crossrank's CLS-only last layer, on a fixed batch
(16 rows x 384 tokens, half of the rows padded after 300). Prints the step time eager and
compiled (inductor; the first compiled step is reported separately, it includes compilation)
and torch's operator profile of one eager step.

Usage:
    python benchmarks/train_step_profile.py --rows 16 --length 384 --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import AutoModelForSequenceClassification

from crossrank.models.cls_only import cls_only, install_cls_only
from crossrank.retrieval.encoder import resolve_model_path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="all-MiniLM-L6-v2")
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--length", type=int, default=384)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile timing")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model_path(args.backbone), num_labels=1, attn_implementation="sdpa"
    )
    print("cls-only installed:", install_cls_only(model))
    model.train()
    ids = torch.randint(1000, 20000, (args.rows, args.length))
    mask = torch.ones_like(ids)
    mask[args.rows // 2 :, min(300, args.length) :] = 0

    def forward(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with cls_only(model):
            return model(input_ids=ids, attention_mask=mask).logits

    def step(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
        started = time.perf_counter()
        fn(ids, mask).sum().backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    step(forward)  # warm-up
    print(f"eager step: {min(step(forward) for _ in range(args.repeats)):.2f} s")
    if not args.no_compile:
        compiled = torch.compile(forward)
        print(f"compiled, first step (includes compilation): {step(compiled):.1f} s")
        print(f"compiled step: {min(step(compiled) for _ in range(args.repeats)):.2f} s")
        print(f"eager step again: {min(step(forward) for _ in range(args.repeats)):.2f} s")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(forward)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
