"""CPU training micro-benchmarks behind crossrank.models.cpu_dropout and the fused AdamW.

Times, on this machine, best of ``--repeats`` after one warm-up:
1. one attention forward + backward (batch x 12 heads x L x 32, a padding mask, dropout 0.1):
   PyTorch SDPA (math path, since its fused CPU kernel has no dropout), SDPA without dropout
   (the fused kernel, for reference), and crossrank's blocked dropout attention;
2. one forward + backward of all-MiniLM-L6-v2 with a 1-logit head in training mode: plain
   transformers (SDPA, nn.Dropout) against crossrank's CLS-only last layer + cpu_dropout;
3. one AdamW step over MiniLM's parameters: the default (foreach) against ``fused=True``.

Usage:
    python benchmarks/cpu_dropout_micro.py --rows 16 --length 256 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
from torch.nn import functional
from transformers import AutoModelForSequenceClassification

from crossrank.models.cls_only import cls_only, install_cls_only
from crossrank.models.cpu_dropout import dropout_attention, install_cpu_dropout
from crossrank.retrieval.encoder import resolve_model_path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="all-MiniLM-L6-v2")
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    return p.parse_args()


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def attention_times(rows: int, length: int, repeats: int) -> dict[str, float]:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(rows, 12, length, 32, generator=gen).requires_grad_() for _ in range(3))
    mask = torch.ones(rows, 1, length, length, dtype=torch.bool)
    mask[: rows // 4, ..., length - 30 :] = False
    module = torch.nn.Module()
    module.training = True

    def sdpa(p: float) -> Callable[[], None]:
        def run() -> None:
            out = functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            out.sum().backward()

        return run

    def blocked() -> None:
        out, _ = dropout_attention(module, q, k, v, mask, dropout=0.1, scaling=32**-0.5)
        out.sum().backward()

    return {
        "sdpa_dropout_s": best_seconds(sdpa(0.1), repeats),
        "sdpa_no_dropout_s": best_seconds(sdpa(0.0), repeats),
        "crossrank_blocked_dropout_s": best_seconds(blocked, repeats),
    }


def model_step_times(args: argparse.Namespace) -> dict[str, float]:
    path = resolve_model_path(args.backbone)
    results = {}
    for name in ("plain_transformers", "crossrank_cls_only_cpu_dropout"):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, attn_implementation="sdpa"
        ).train()
        fast = name.startswith("crossrank")
        if fast:
            install_cls_only(model)
            install_cpu_dropout(model)
        ids = torch.randint(1000, 20000, (args.rows, args.length))
        mask = torch.ones_like(ids)
        mask[: args.rows // 4, args.length - 30 :] = 0

        def step(
            model: torch.nn.Module = model,
            fast: bool = fast,
            ids: torch.Tensor = ids,
            mask: torch.Tensor = mask,
        ) -> None:
            with cls_only(model) if fast else torch.enable_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits
            logits.sum().backward()

        results[f"{name}_step_s"] = best_seconds(step, args.repeats)
        if not fast:
            params = [p for p in model.parameters() if p.grad is not None]
            for fused in (False, True):
                optimizer = torch.optim.AdamW(params, lr=1e-5, fused=fused or None)
                key = "adamw_fused_step_s" if fused else "adamw_foreach_step_s"
                results[key] = best_seconds(optimizer.step, args.repeats)
    return results


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    summary = {
        "rows": args.rows,
        "length": args.length,
        "threads": torch.get_num_threads(),
        **attention_times(args.rows, args.length, args.repeats),
        **model_step_times(args),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
