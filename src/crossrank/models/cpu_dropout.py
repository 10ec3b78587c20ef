"""Dropout for CPU training at a fraction of PyTorch's cost, with the same computation.

Two costs dominate a CPU training step of a small BERT besides its matrix products, both from
dropout:

- PyTorch's CPU ``scaled_dot_product_attention`` has a fused (flash) kernel, but only without
  dropout. With the 0.1 attention dropout BERT-family checkpoints train with, it falls back to
  its math path: the (batch, heads, L, L) scores go through memory several times (scale, mask,
  softmax, a ``bernoulli_`` mask, multiply) and again in the backward; at L = 256 that is
  about 5x the fused kernel's time (``benchmarks/cpu_dropout_micro.py``).
  :func:`dropout_attention` computes ``dropout(softmax(Q Kᵀ * scale + mask)) V`` one batch
  row and a few heads at a time, so each block stays in the core's cache, and uses float
  masks (bool masks and ``masked_fill`` are several times slower on the CPU). Outside CPU fp32 training with 0 < p < 1, or for inputs it
  does not cover (causal, grouped-query, learned biases), it hands the call to transformers'
  SDPA attention unchanged.
- ``nn.Dropout``'s ``bernoulli_`` draws one random number per element. :class:`CpuDropout`
  draws 16-bit uniforms four per 64-bit random word instead.

Both draw from the default generator (seeded runs repeat) and keep each element with
probability ``1 - p`` within 2^-17, scaling kept values by ``1 / (1 - p)`` as PyTorch does.
:func:`install_cpu_dropout` applies both to a transformers model; the attention name lives
only in memory (saved ``config.json`` files carry none) and dropout modules have no weights,
so saved checkpoints are unchanged.

Example:
    >>> install_cpu_dropout(model.module)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor, nn
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from crossrank.errors import ConfigError

__all__ = [
    "ATTENTION_NAME",
    "CpuDropout",
    "dropout_attention",
    "dropout_draws",
    "install_cpu_dropout",
    "keep_mask",
    "uninstall_cpu_dropout",
]

ATTENTION_NAME = "crossrank_dropout_cpu"
# One block's scores (heads x L x L fp32) aim at 1 MiB, about a core's L2 on current x86 CPUs.
_BLOCK_BYTES = 1 << 20
_REGISTER_LOCK = threading.Lock()


def dropout_draws(shape: tuple[int, ...]) -> Tensor:
    """Uniform int16 draws of ``shape``, four per 64-bit word of the default generator."""
    size = math.prod(shape)
    words = torch.randint(-(2**63), 2**63 - 1, ((size + 3) // 4,), dtype=torch.int64)
    return words.view(torch.int16)[:size].view(shape)


def keep_mask(draws: Tensor, p: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """1.0 where a draw keeps its position (probability ``1 - p`` within 2^-17), else 0.0.

    Float, not bool: on the CPU, bool masks and ``masked_fill`` run several times slower than
    a float multiply.

    >>> torch.manual_seed(0) and None
    >>> round(keep_mask(dropout_draws((1000, 1000)), 0.1).mean().item(), 2)
    0.9
    """
    if not 0.0 < p < 1.0:
        raise ConfigError(f"dropout probability must be in (0, 1), got {p!r}")
    # A lane is uniform on [-32768, 32767] and kept below the threshold; for integer draws
    # threshold - draw is >= 1 when kept and <= 0 when dropped, so the clamp gives 1 or 0.
    threshold = round((1.0 - p) * 65536) - 32768
    return torch.sub(threshold, draws.to(dtype)).clamp_(0.0, 1.0)


def dropout_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    *,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: object,
) -> tuple[Tensor, None]:
    """transformers attention-interface function; see the module docstring."""
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", False)
    if not _covered(query, key, attention_mask, dropout=dropout, causal=causal, kwargs=kwargs):
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=is_causal,
            **kwargs,
        )
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    bias = _additive(attention_mask)
    draws = dropout_draws((*query.shape[:3], key.shape[2]))
    output = _BlockedDropoutAttention.apply(query, key, value, bias, draws, scale, dropout)
    return output.transpose(1, 2).contiguous(), None


class CpuDropout(nn.Dropout):
    """``nn.Dropout`` drawing its CPU fp32 training masks with :func:`keep_mask`.

    Elsewhere (eval, GPU, other dtypes, p of 0 or 1) it is ``nn.Dropout``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and 0.0 < self.p < 1.0 and _cpu_fp32(x)):
            return super().forward(x)
        draws = dropout_draws(tuple(x.shape))
        mask = keep_mask(draws, self.p, x.dtype).mul_(1.0 / (1.0 - self.p))
        return x.mul_(mask) if self.inplace else x * mask


def install_cpu_dropout(module: nn.Module) -> bool:
    """Give ``module`` :func:`dropout_attention` and :class:`CpuDropout` layers.

    The attention switch needs a transformers model on ``"sdpa"`` that dispatches through
    transformers' attention interface (BERT, RoBERTa, XLM-R, ELECTRA); returns whether it was
    made (any other model keeps its attention). Idempotent.
    """
    for child in module.modules():
        if type(child) is nn.Dropout:
            child.__class__ = CpuDropout
    implementation = getattr(getattr(module, "config", None), "_attn_implementation", None)
    if implementation == "sdpa" and getattr(module, "_supports_attention_backend", False):
        _register()
        module.set_attn_implementation(ATTENTION_NAME)
        return True
    return implementation == ATTENTION_NAME


def uninstall_cpu_dropout(module: nn.Module) -> None:
    """Undo :func:`install_cpu_dropout`: ``"sdpa"`` attention and plain ``nn.Dropout``."""
    for child in module.modules():
        if type(child) is CpuDropout:
            child.__class__ = nn.Dropout
    if getattr(getattr(module, "config", None), "_attn_implementation", None) == ATTENTION_NAME:
        module.set_attn_implementation("sdpa")


def _register() -> None:
    with _REGISTER_LOCK:
        if ATTENTION_NAME not in ALL_ATTENTION_FUNCTIONS:
            ALL_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, dropout_attention)
        if ATTENTION_NAME not in ALL_MASK_ATTENTION_FUNCTIONS:
            # The fallback is SDPA, so the model must build SDPA's masks.
            ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)


def _covered(
    query: Tensor,
    key: Tensor,
    mask: Tensor | None,
    *,
    dropout: float,
    causal: bool,
    kwargs: dict[str, object],
) -> bool:
    return (
        0.0 < dropout < 1.0
        and _cpu_fp32(query)
        and key.dtype == torch.float32
        and not causal
        and query.shape[1] == key.shape[1]
        and kwargs.get("position_bias") is None
        and kwargs.get("softcap") is None
        and (mask is None or mask.dtype == torch.bool or not mask.requires_grad)
    )


def _cpu_fp32(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32


def _additive(mask: Tensor | None) -> Tensor | None:
    """A boolean keep-mask as 0 / dtype-min additive bias (what SDPA's math path adds)."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    bias = torch.zeros(mask.shape, dtype=torch.float32)
    return bias.masked_fill_(~mask, torch.finfo(torch.float32).min)


def _blocks(batch: int, heads: int, rows: int, cols: int) -> list[tuple[int, slice]]:
    per_block = max(1, min(heads, _BLOCK_BYTES // max(1, rows * cols * 4)))
    return [
        (b, slice(h, min(h + per_block, heads)))
        for b in range(batch)
        for h in range(0, heads, per_block)
    ]


def _bias_block(bias: Tensor | None, b: int, heads: slice) -> Tensor | None:
    if bias is None:
        return None
    block = bias[b if bias.shape[0] > 1 else 0]
    return block[heads] if block.shape[0] > 1 else block


class _BlockedDropoutAttention(torch.autograd.Function):
    """``dropout(softmax(q kᵀ * scale + bias)) v`` over (batch row, head group) blocks.

    Only the probabilities and the int16 draws are kept for the backward. The keep scale
    ``1 / (1 - p)`` and the score scale are applied to the small (L x head size) operands,
    not to the L x L blocks, and the softmax backward's row term is ``rowsum(dO * O)``.
    """

    @staticmethod
    def forward(  # noqa: PLR0917 - autograd's apply passes every input positionally
        ctx: torch.autograd.function.FunctionCtx,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        bias: Tensor | None,
        draws: Tensor,
        scale: float,
        p: float,
    ) -> Tensor:
        query, key, value = query.contiguous(), key.contiguous(), value.contiguous()
        batch, heads, rows, _ = query.shape
        probs = query.new_empty((batch, heads, rows, key.shape[2]))
        output = query.new_empty((batch, heads, rows, value.shape[3]))
        keep_scale = 1.0 / (1.0 - p)
        for b, h in _blocks(batch, heads, rows, key.shape[2]):
            block_bias = _bias_block(bias, b, h)
            q, k = query[b, h], key[b, h].transpose(1, 2)
            if block_bias is None:
                scores = torch.bmm(q, k).mul_(scale)
            else:
                scores = torch.baddbmm(block_bias, q, k, alpha=scale)
            torch.softmax(scores, -1, out=probs[b, h])
            kept = keep_mask(draws[b, h], p, probs.dtype).mul_(probs[b, h])
            torch.bmm(kept, value[b, h], out=output[b, h])
        output.mul_(keep_scale)
        ctx.save_for_backward(query, key, value, probs, draws, output)
        ctx.scale, ctx.p = scale, p
        return output

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_output: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, None, None, None, None]:
        query, key, value, probs, draws, output = ctx.saved_tensors
        keep_scale = 1.0 / (1.0 - ctx.p)
        grad_output = grad_output.contiguous()
        # rowsum(dP * P) = rowsum(dO * O) for P's rows, dropout included.
        row_dot = (grad_output * output).sum(-1, keepdim=True)
        grad_out_kept = grad_output * keep_scale
        grad_q, grad_k, grad_v = (
            torch.empty_like(query),
            torch.empty_like(key),
            torch.empty_like(value),
        )
        batch, heads, rows, cols = probs.shape
        for b, h in _blocks(batch, heads, rows, cols):
            prob, mask = probs[b, h], keep_mask(draws[b, h], ctx.p, probs.dtype)
            torch.bmm(torch.mul(prob, mask).transpose(1, 2), grad_out_kept[b, h], out=grad_v[b, h])
            grad_s = torch.bmm(grad_out_kept[b, h], value[b, h].transpose(1, 2)).mul_(mask)
            grad_s.sub_(row_dot[b, h]).mul_(prob)
            torch.bmm(grad_s, key[b, h], out=grad_q[b, h])
            torch.bmm(grad_s.transpose(1, 2), query[b, h], out=grad_k[b, h])
        return grad_q.mul_(ctx.scale), grad_k.mul_(ctx.scale), grad_v, None, None, None, None
