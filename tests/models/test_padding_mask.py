"""Expanded padding masks: same logits as the 2D mask, only where SDPA reads them."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from crossrank.models.cls_only import cls_only, install_cls_only
from crossrank.models.padding_mask import expanded_mask, mask_for, takes_expanded_mask

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 100,
    "num_labels": 1,
}


def _padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, 100, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    return ids, mask


def test_expanded_mask_is_sdpa_boolean_layout() -> None:
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    out = expanded_mask(mask)
    assert out.shape == (2, 1, 1, 3)
    assert out.dtype == torch.bool
    assert out[:, 0, 0].tolist() == [[True, True, False], [True, False, False]]


@pytest.mark.parametrize(
    ("config", "model"),
    [
        (BertConfig, BertForSequenceClassification),
        (RobertaConfig, RobertaForSequenceClassification),
    ],
)
def test_bert_family_gives_the_same_logits_with_the_expanded_mask(config, model) -> None:
    module = model(config(**TINY)).eval()
    assert takes_expanded_mask(module)
    ids, mask = _padded_batch()
    with torch.no_grad():
        plain = module(input_ids=ids, attention_mask=mask).logits
        expanded = module(input_ids=ids, attention_mask=expanded_mask(mask)).logits
    torch.testing.assert_close(expanded, plain, rtol=1e-5, atol=1e-6)
    # The encoder states (more sensitive than a random head's logits) agree too, and the
    # padding mattered: without a mask the padded rows come out different.
    encoder = module.base_model
    with torch.no_grad():
        states = encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        via_4d = encoder(input_ids=ids, attention_mask=expanded_mask(mask)).last_hidden_state
        unmasked = encoder(input_ids=ids).last_hidden_state[:, 0]
    torch.testing.assert_close(via_4d[:, 0], states, rtol=1e-5, atol=1e-5)
    assert (unmasked[1:] - states[1:]).abs().amax(dim=1).min() > 1e-3


def test_cls_only_layer_reads_the_expanded_mask() -> None:
    module = BertForSequenceClassification(BertConfig(**TINY)).eval()
    assert install_cls_only(module)
    ids, mask = _padded_batch()
    with torch.no_grad():
        plain = module(input_ids=ids, attention_mask=mask).logits
        with cls_only(module):
            fast = module(input_ids=ids, attention_mask=expanded_mask(mask)).logits
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)


def test_refused_for_eager_attention_and_for_deberta() -> None:
    eager = BertForSequenceClassification(BertConfig(**TINY, attn_implementation="eager"))
    assert not takes_expanded_mask(eager)
    deberta = DebertaV2ForSequenceClassification(DebertaV2Config(**TINY))
    assert not takes_expanded_mask(deberta)


def test_probe_leaves_the_training_mode_as_it_was() -> None:
    module = BertForSequenceClassification(BertConfig(**TINY)).train()
    assert takes_expanded_mask(module)
    assert module.training


def test_mask_for_leaves_cpu_masks_and_disabled_or_eager_models_alone() -> None:
    module = BertForSequenceClassification(BertConfig(**TINY))
    mask = torch.ones(2, 3, dtype=torch.long)
    assert mask_for(module, mask, True) is mask  # a CPU forward never waits for a device
    assert mask_for(module, mask, False) is mask
    eager = BertForSequenceClassification(BertConfig(**TINY, attn_implementation="eager"))
    assert mask_for(eager, mask, True) is mask


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mask_for_expands_on_cuda_when_sdpa_reads_it() -> None:
    module = BertForSequenceClassification(BertConfig(**TINY))
    mask = torch.ones(2, 3, dtype=torch.long, device="cuda")
    assert mask_for(module, mask, True).shape == (2, 1, 1, 3)
    assert mask_for(module, mask, False) is mask


class _IgnoresExpandedMasks(BertForSequenceClassification):
    """A model that silently drops a 4D mask: the probe must not trust it."""

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        if attention_mask is not None and attention_mask.dim() == 4:
            attention_mask = None
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


def test_probe_catches_a_model_that_ignores_the_expanded_mask() -> None:
    assert not takes_expanded_mask(_IgnoresExpandedMasks(BertConfig(**TINY)))
