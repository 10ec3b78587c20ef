"""Run the last encoder layer on the [CLS] position only (exact, about 15% less compute).

A cross-encoder's score reads only position 0 of the last layer. That layer still needs the
keys and values of every position, but its query projection, attention output, feed-forward
block and LayerNorms matter only at position 0. :func:`install_cls_only` patches the last
layer of a BERT-family encoder (BERT, RoBERTa, XLM-R, ELECTRA, CamemBERT: the same layer
layout) so that, inside :func:`cls_only`, it computes exactly that and returns a one-position
hidden state; the pooler and classification heads of these families read position 0 only.

Scores equal the full forward's up to float rounding; the install checks this on a probe
batch and refuses (returns False) when it does not hold or the layout is not recognised.
Outside :func:`cls_only` the patched layer runs its original forward, so attention maps,
hidden-state outputs and ONNX export see the unmodified model. Parameter names do not
change (the layer's ``forward`` is replaced, the module is not wrapped), so saved weights are
plain Hugging Face weights.

Example:
    >>> install_cls_only(model.module)  # doctest: +SKIP
    True
    >>> with cls_only(model.module):  # doctest: +SKIP
    ...     logits = model.module(**inputs).logits
"""

from __future__ import annotations

import contextlib
import logging
import threading
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from crossrank.models.cpu_dropout import ATTENTION_NAME
from crossrank.models.probe import padded_probe_inputs

__all__ = ["cls_only", "install_cls_only", "uninstall_cls_only"]

logger = logging.getLogger(__name__)

# Per thread: a block on one thread never changes another thread's forward (e.g. attention
# maps read by an explanation while a scorer runs).
_ACTIVE = threading.local()
_STATE = "_crossrank_cls_only_installed"
_ATTENTION = {"sdpa", "eager", ATTENTION_NAME}
_UNSUPPORTED_KWARGS = (
    "encoder_hidden_states",
    "encoder_attention_mask",
    "cache",
    "past_key_values",
    "past_key_value",
)
_PROBE_TOLERANCE = 1e-4


def install_cls_only(module: nn.Module) -> bool:
    """Patch ``module``'s last encoder layer for :func:`cls_only`; False where unsupported.

    Idempotent: the first call decides (probe check included) and later calls return that.
    """
    installed = getattr(module, _STATE, None)
    if installed is not None:
        return bool(installed)
    layer = _last_layer(module)
    ok = layer is not None and _patch(layer)
    if ok and not _probe_matches(module, layer):
        _unpatch(layer)
        ok = False
        logger.warning(
            "CLS-only last layer does not reproduce %s's logits; not used", _name(module)
        )
    setattr(module, _STATE, ok)
    return ok


def uninstall_cls_only(module: nn.Module) -> None:
    """Undo :func:`install_cls_only`: the last layer runs its own forward again (benchmarks).

    A later :func:`install_cls_only` on the same module returns False.
    """
    layer = _last_layer(module)
    if layer is not None and getattr(module, _STATE, False):
        _unpatch(layer)
    setattr(module, _STATE, False)


@contextlib.contextmanager
def cls_only(module: nn.Module) -> Iterator[bool]:
    """Within the block, the patched last layer computes position 0 only; yields whether.

    A module without the patch (never installed, or refused) runs unchanged.
    """
    active = bool(getattr(module, _STATE, False))
    layer = _last_layer(module) if active else None
    if layer is None:
        yield False
        return
    with _active(layer):
        yield True


@contextlib.contextmanager
def _active(layer: nn.Module) -> Iterator[None]:
    layers = _active_layers()
    added = id(layer) not in layers
    layers.add(id(layer))
    try:
        yield
    finally:
        if added:
            layers.discard(id(layer))


def _active_layers() -> set[int]:
    layers = getattr(_ACTIVE, "layers", None)
    if layers is None:
        layers = _ACTIVE.layers = set()
    return layers


def _last_layer(module: nn.Module) -> nn.Module | None:
    """The last self-attention layer of a BERT-layout encoder, or None."""
    config = getattr(module, "config", None)
    if config is None or getattr(config, "is_decoder", False):
        return None
    if getattr(config, "add_cross_attention", False):
        return None
    base = getattr(module, getattr(module, "base_model_prefix", ""), None)
    encoder = getattr(base, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        return None
    layer = layers[-1]
    attention = getattr(layer, "attention", None)
    self_attention = getattr(attention, "self", None)
    parts = (
        getattr(self_attention, "query", None),
        getattr(self_attention, "key", None),
        getattr(self_attention, "value", None),
        getattr(attention, "output", None),
        getattr(layer, "feed_forward_chunk", None),
    )
    return layer if all(p is not None for p in parts) else None


def _patch(layer: nn.Module) -> bool:
    if "forward" in vars(layer):  # already patched, or patched by someone else
        return False
    # A module-level function bound to the layer (no closure), so a deep copy of the model
    # gets a forward bound to the copied layer.
    layer.forward = types.MethodType(_patched_forward, layer)
    return True


def _patched_forward(
    self: nn.Module,
    hidden_states: Tensor,
    attention_mask: Tensor | None = None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    if id(self) in _active_layers() and _plain_call(self, attention_mask, args, kwargs):
        return _cls_forward(self, hidden_states, attention_mask)
    return type(self).forward(self, hidden_states, attention_mask, *args, **kwargs)


def _unpatch(layer: nn.Module) -> None:
    vars(layer).pop("forward", None)


def _plain_call(
    layer: nn.Module, mask: Tensor | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bool:
    """A self-attention-only call we can reproduce (no cross-attention, cache or maps)."""
    if any(a is not None for a in args) or kwargs.get("output_attentions"):
        return False
    if layer.training and getattr(layer, "gradient_checkpointing", False):
        return False  # the recomputation in backward would run the full layer
    if any(kwargs.get(k) is not None for k in _UNSUPPORTED_KWARGS):
        return False
    config = getattr(layer.attention.self, "config", None)
    implementation = getattr(config, "_attn_implementation", "eager")
    return implementation in _ATTENTION and (mask is None or mask.dim() == 4)


def _cls_forward(layer: nn.Module, hidden: Tensor, mask: Tensor | None) -> Tensor:
    """The layer's output at position 0 only, shape ``(batch, 1, hidden)``."""
    attention = layer.attention.self
    batch = hidden.shape[0]
    heads = attention.num_attention_heads
    size = attention.attention_head_size
    first = hidden[:, :1]

    def split(x: Tensor) -> Tensor:
        return x.view(batch, x.shape[1], heads, size).transpose(1, 2)

    query = split(attention.query(first))
    key, value = split(attention.key(hidden)), split(attention.value(hidden))
    if mask is not None and mask.shape[2] > 1:
        mask = mask[:, :, :1, :]
    if mask is not None and mask.dtype not in (torch.bool, query.dtype):
        mask = mask.to(query.dtype)
    context = functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=mask,
        dropout_p=attention.dropout.p if layer.training else 0.0,
        scale=getattr(attention, "scaling", size**-0.5),
    )
    context = context.transpose(1, 2).reshape(batch, 1, heads * size)
    return layer.feed_forward_chunk(layer.attention.output(context, first))


def _probe_matches(module: nn.Module, layer: nn.Module) -> bool:
    """Logits with and without the patch agree on a padded probe batch (eval mode, no grad)."""
    parameter = next(module.parameters())
    inputs = padded_probe_inputs(module)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            full = module(**inputs).logits.float()
            with _active(layer):
                fast = module(**inputs).logits.float()
                # One position out means the encoder called the layer the way we handle.
                base = getattr(module, module.base_model_prefix)
                if base(**inputs).last_hidden_state.shape[1] != 1:
                    return False
    except (RuntimeError, TypeError, ValueError, AttributeError) as err:
        logger.info("CLS-only probe of %s failed: %s", _name(module), err)
        return False
    finally:
        module.train(was_training)
    scale = max(1.0, float(full.abs().max()))
    tolerance = _PROBE_TOLERANCE if parameter.dtype == torch.float32 else 2e-2
    return full.shape == fast.shape and float((full - fast).abs().max()) <= tolerance * scale


def _name(module: nn.Module) -> str:
    return str(getattr(getattr(module, "config", None), "name_or_path", type(module).__name__))
