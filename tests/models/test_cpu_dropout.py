"""CPU dropout: blocked attention equals SDPA's dropout math, fast masks keep 1 - p, install."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
)
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

import crossrank.models.cpu_dropout as da
from crossrank.errors import ConfigError
from crossrank.models.cls_only import cls_only, install_cls_only

SIZES = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": 120,
    "max_position_embeddings": 64,
    "num_labels": 1,
}
REFERENCE = "crossrank_test_reference"


def _reference(q, k, v, bias, keep, *, scale, p):
    scores = q @ k.transpose(-1, -2) * scale
    if bias is not None:
        scores = scores + bias
    return (torch.softmax(scores, -1) * keep / (1 - p)) @ v


@pytest.mark.parametrize("block_bytes", [1 << 20, 64])  # all heads per block / one head per block
@pytest.mark.parametrize("masked", [True, False])
def test_blocks_equal_the_reference_math(
    monkeypatch: pytest.MonkeyPatch, block_bytes: int, masked: bool
) -> None:
    monkeypatch.setattr(da, "_BLOCK_BYTES", block_bytes)
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 4, 9, 5, dtype=torch.float64, generator=gen) for _ in range(3))
    q2, k2, v2 = (x.clone().requires_grad_() for x in (q, k, v))
    q.requires_grad_(), k.requires_grad_(), v.requires_grad_()
    bias = None
    if masked:
        mask = torch.ones(3, 1, 9, 9, dtype=torch.bool)
        mask[1, ..., 6:] = False
        bias = da._additive(mask).double()
    torch.manual_seed(1)
    draws = da.dropout_draws((3, 4, 9, 9))
    out = da._BlockedDropoutAttention.apply(q, k, v, bias, draws, 0.4, 0.3)
    ref = _reference(q2, k2, v2, bias, da.keep_mask(draws, 0.3).double(), scale=0.4, p=0.3)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    upstream = torch.randn(out.shape, dtype=torch.float64, generator=gen)
    grads = torch.autograd.grad(out, (q, k, v), upstream)
    expected = torch.autograd.grad(ref, (q2, k2, v2), upstream)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_keep_mask_keeps_one_minus_p(p: float) -> None:
    torch.manual_seed(0)
    keep = da.keep_mask(da.dropout_draws((2_000, 1_000)), p)
    assert set(keep.unique().tolist()) <= {0.0, 1.0}
    # 2M draws: the binomial standard error is at most 3.5e-4.
    assert abs(keep.mean().item() - (1 - p)) < 2e-3


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1])
def test_keep_mask_rejects_p_outside_0_1(p: float) -> None:
    with pytest.raises(ConfigError, match="dropout probability"):
        da.keep_mask(torch.zeros(4, dtype=torch.int16), p)


def _bert(attention_dropout: float = 0.2) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        **SIZES, attention_probs_dropout_prob=attention_dropout, hidden_dropout_prob=0.0
    )
    model = BertForSequenceClassification(config)
    model.set_attn_implementation("sdpa")
    return model


def _inputs() -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 120, (3, 17), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _recorded_reference(recorded: list[torch.Tensor]):
    """An attention function computing the math with the draws the blocked run recorded."""

    def attention(module, query, key, value, attention_mask, *, dropout=0.0, scaling=None, **_):
        draws = recorded.pop(0)
        bias = da._additive(attention_mask)
        out = _reference(
            query, key, value, bias, da.keep_mask(draws, dropout), scale=scaling, p=dropout
        )
        return out.transpose(1, 2).contiguous(), None

    return attention


def test_model_logits_and_gradients_equal_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _bert().train()
    assert da.install_cpu_dropout(model)
    recorded: list[torch.Tensor] = []
    real_draws = da.dropout_draws

    def recording(shape: tuple[int, ...]) -> torch.Tensor:
        recorded.append(real_draws(shape))
        return recorded[-1]

    monkeypatch.setattr(da, "dropout_draws", recording)
    logits = model(**_inputs()).logits
    grads = torch.autograd.grad(logits.sum(), list(model.parameters()), allow_unused=True)
    assert len(recorded) == SIZES["num_hidden_layers"]

    ALL_ATTENTION_FUNCTIONS.register(REFERENCE, _recorded_reference(recorded))
    ALL_MASK_ATTENTION_FUNCTIONS.register(REFERENCE, sdpa_mask)
    model.set_attn_implementation(REFERENCE)
    expected_logits = model(**_inputs()).logits
    expected = torch.autograd.grad(
        expected_logits.sum(), list(model.parameters()), allow_unused=True
    )
    torch.testing.assert_close(logits, expected_logits, rtol=0, atol=1e-5)
    for got, want in zip(grads, expected, strict=True):
        if want is not None:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["eval", "no-dropout"])
def test_outside_training_dropout_it_is_sdpa(mode: str) -> None:
    model = _bert(0.0 if mode == "no-dropout" else 0.2)
    model.train(mode == "no-dropout")
    with torch.no_grad():
        plain = model(**_inputs()).logits
    assert da.install_cpu_dropout(model)
    with torch.no_grad():
        blocked = model(**_inputs()).logits
    torch.testing.assert_close(blocked, plain, rtol=0, atol=0)


def test_seeded_training_forwards_repeat() -> None:
    model = _bert().train()
    da.install_cpu_dropout(model)
    torch.manual_seed(5)
    first = model(**_inputs()).logits
    torch.manual_seed(5)
    again = model(**_inputs()).logits
    torch.manual_seed(6)
    other = model(**_inputs()).logits
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.equal(first, other)  # the dropout draws did change the forward


def test_install_switches_sdpa_and_dropout_layers_and_uninstall_restores() -> None:
    model = _bert()
    model.set_attn_implementation("eager")
    assert not da.install_cpu_dropout(model)  # attention stays eager
    assert model.config._attn_implementation == "eager"
    model.set_attn_implementation("sdpa")
    assert da.install_cpu_dropout(model)
    assert da.install_cpu_dropout(model)  # idempotent
    assert model.config._attn_implementation == da.ATTENTION_NAME
    assert all(type(m) is da.CpuDropout for m in model.modules() if isinstance(m, torch.nn.Dropout))
    da.uninstall_cpu_dropout(model)
    assert model.config._attn_implementation == "sdpa"
    assert not any(isinstance(m, da.CpuDropout) for m in model.modules())


def test_cpu_dropout_layer_keeps_scales_and_passes_gradients_through_the_mask() -> None:
    layer = da.CpuDropout(0.25)
    x = torch.ones(400, 500, requires_grad=True)
    torch.manual_seed(0)
    y = layer(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 5e-3
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.75))
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, y.detach())
    layer.eval()
    assert layer(x) is x or torch.equal(layer(x), x)
    inplace = da.CpuDropout(0.25, inplace=True).train()
    z = torch.ones(10, 10)
    assert inplace(z) is z


def test_saved_config_names_no_custom_attention(tmp_path) -> None:
    model = _bert()
    da.install_cpu_dropout(model)
    model.save_pretrained(tmp_path)
    assert da.ATTENTION_NAME not in (tmp_path / "config.json").read_text()
    json.loads((tmp_path / "config.json").read_text())
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert loaded.config._attn_implementation != da.ATTENTION_NAME


def test_cls_only_layer_still_applies() -> None:
    model = _bert()
    assert install_cls_only(model)
    assert da.install_cpu_dropout(model)
    model.train()
    with cls_only(model) as active:
        logits = model(**_inputs()).logits
    assert active and logits.shape == (3, 1)


def test_a_model_outside_the_attention_interface_keeps_its_attention_and_trains() -> None:
    config = DebertaV2Config(**{**SIZES, "vocab_size": 120})
    model = DebertaV2ForSequenceClassification(config).train()
    before = model.config._attn_implementation
    assert not da.install_cpu_dropout(model)
    assert model.config._attn_implementation == before
    model(**_inputs()).logits.sum().backward()
    assert all(p.grad is not None for p in model.classifier.parameters())
