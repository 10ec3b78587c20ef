"""A small padded probe batch, for checks that a rewrite of a model keeps its logits.

:func:`~crossrank.models.cls_only.install_cls_only` and
:func:`~crossrank.models.padding_mask.takes_expanded_mask` run a model on it both ways and
compare: two rows of random ids, the second padded after half its length, so that a change in
how padding is handled shows up in the logits.

Example:
    >>> inputs = padded_probe_inputs(bert)  # doctest: +SKIP
    >>> inputs["attention_mask"].tolist()[1][:3]  # doctest: +SKIP
    [1, 1, 1]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["padded_probe_inputs"]


def padded_probe_inputs(module: nn.Module) -> dict[str, Tensor]:
    """``input_ids`` and ``attention_mask`` (2 rows, up to 24 tokens) on ``module``'s device."""
    config = module.config
    device = next(module.parameters()).device
    generator = torch.Generator().manual_seed(0)
    length = min(24, int(getattr(config, "max_position_embeddings", 24)) - 2)
    ids = torch.randint(5, int(config.vocab_size), (2, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, length // 2 :] = 0
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
