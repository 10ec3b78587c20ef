"""Padding masks handed to transformers already expanded, so a GPU forward never waits.

Given a 2D padding mask, transformers' ``create_bidirectional_mask`` first asks whether any
position is padded (``padding_mask.all()``, so that a mask without padding can be dropped
and SDPA may pick flash attention). On CUDA that question is a host-device sync inside every
forward pass: the host cannot queue a batch's kernels until the GPU has finished everything
queued before, so preparing batch k+1 never overlaps running batch k. A mask that is already
4D is passed through untouched, so on CUDA crossrank hands BERT-family models the boolean
``[batch, 1, 1, width]`` mask that SDPA reads (True: attend), broadcast over heads and query
positions. Padded batches get the same attention either way (transformers also builds a
boolean mask for SDPA); an unpadded batch now goes to the memory-efficient kernel with an
all-True mask instead of flash attention without one, the same attention up to rounding.

Only where it is known to hold: the attention implementation reads SDPA-style boolean masks
(``sdpa`` or crossrank's CPU-dropout attention), checked on every call because explanations
switch a model to eager attention, and :func:`takes_expanded_mask` found the logits equal on
a padded probe batch (DeBERTa, for one, builds its own mask from the 2D one).

Example:
    >>> ok = takes_expanded_mask(model.module)  # doctest: +SKIP
    >>> model.module(input_ids=ids, attention_mask=mask_for(model.module, mask, ok)).logits  # doctest: +SKIP
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from crossrank.models.cpu_dropout import ATTENTION_NAME
from crossrank.models.probe import padded_probe_inputs

__all__ = ["expanded_mask", "mask_for", "takes_expanded_mask"]

logger = logging.getLogger(__name__)

# Attention implementations that read a boolean 4D mask as SDPA does.
_SDPA_FAMILY = ("sdpa", ATTENTION_NAME)


def expanded_mask(mask: Tensor) -> Tensor:
    """``[batch, width]`` 0/1 padding mask as SDPA's boolean ``[batch, 1, 1, width]`` mask.

    >>> expanded_mask(torch.tensor([[1, 1, 0]])).tolist()
    [[[[True, True, False]]]]
    """
    return mask[:, None, None, :].bool()


def mask_for(module: nn.Module, mask: Tensor, enabled: bool) -> Tensor:
    """The mask to pass ``module``: expanded on CUDA when ``enabled`` and SDPA reads it.

    >>> mask_for(bert, torch.ones(2, 3, dtype=torch.long), True).shape  # CPU: unchanged  # doctest: +SKIP
    torch.Size([2, 3])
    """
    if not enabled or mask.device.type != "cuda" or mask.dim() != 2:
        return mask
    if getattr(module.config, "_attn_implementation", None) not in _SDPA_FAMILY:
        return mask
    return expanded_mask(mask)


def takes_expanded_mask(module: nn.Module) -> bool:
    """Whether ``module``'s logits are the same with :func:`expanded_mask` as with the 2D mask.

    Run on a small padded probe batch in eval mode, without gradients, on the module's
    current device and dtype (call it before a half-precision cast, as ``install_cls_only``).
    The last layer's [CLS] states are compared too: a fresh head's logits are too small to
    show a mask that was ignored.
    """
    config = getattr(module, "config", None)
    if getattr(config, "_attn_implementation", None) not in _SDPA_FAMILY:
        return False
    inputs = padded_probe_inputs(module)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            plain = _logits_and_cls(module, ids, mask)
            expanded = _logits_and_cls(module, ids, expanded_mask(mask))
    except (RuntimeError, TypeError, ValueError, AttributeError, IndexError) as err:
        logger.info("expanded-mask probe of %s failed: %s", type(module).__name__, err)
        return False
    finally:
        module.train(was_training)
    return bool(torch.allclose(plain, expanded, rtol=1e-4, atol=1e-5))


def _logits_and_cls(module: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    out = module(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return torch.cat([out.logits.float().flatten(), out.hidden_states[-1][:, 0].float().flatten()])
