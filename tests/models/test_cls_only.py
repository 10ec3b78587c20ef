"""The CLS-only last layer: same logits and gradients as the full forward, opt-in, refusals."""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

import crossrank.models.cls_only as cls_only_module
from crossrank.models.cls_only import cls_only, install_cls_only, uninstall_cls_only

SIZES = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "vocab_size": 120,
    "max_position_embeddings": 64,
    "num_labels": 1,
}


def _bert(attn: str = "sdpa") -> torch.nn.Module:
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**SIZES))
    model.set_attn_implementation(attn)
    return model.eval()


def _inputs() -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 120, (3, 17), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[2, 4:] = 0
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types * mask}


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_logits_equal_the_full_forward(attn: str) -> None:
    model = _bert(attn)
    with torch.no_grad():
        full = model(**_inputs()).logits
    assert install_cls_only(model)
    with torch.no_grad(), cls_only(model) as active:
        fast = model(**_inputs()).logits
    assert active
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-5)


def test_outside_the_block_the_model_is_unchanged() -> None:
    model = _bert()
    assert install_cls_only(model)
    hidden = model.bert(**_inputs()).last_hidden_state
    assert hidden.shape[1] == 17  # every position, as without the patch
    with cls_only(model):
        assert model.bert(**_inputs()).last_hidden_state.shape[1] == 1
    names = {name for name, _ in model.named_parameters()}
    assert names == {name for name, _ in _bert().named_parameters()}


def test_gradients_equal_the_full_forward() -> None:
    reference, patched = _bert(), _bert()
    assert install_cls_only(patched)
    target = torch.tensor([1.0, 0.0, 1.0])
    for model, block in ((reference, False), (patched, True)):
        context = cls_only(model) if block else torch.enable_grad()
        with context:
            logits = model(**_inputs()).logits[:, 0]
        torch.nn.functional.binary_cross_entropy_with_logits(logits, target).backward()
    grads = dict(reference.named_parameters())
    for name, parameter in patched.named_parameters():
        expected = grads[name].grad
        if expected is None or not expected.abs().sum():
            continue  # parameters that get no gradient either way (e.g. unused pooler rows)
        torch.testing.assert_close(parameter.grad, expected, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    ("config_cls", "model_cls"),
    [
        (RobertaConfig, RobertaForSequenceClassification),
        (ElectraConfig, ElectraForSequenceClassification),
    ],
)
def test_other_bert_layout_families(config_cls: type, model_cls: type) -> None:
    torch.manual_seed(0)
    extra = {"embedding_size": 32} if config_cls is ElectraConfig else {"pad_token_id": 1}
    model = model_cls(config_cls(**SIZES, **extra)).eval()
    with torch.no_grad():
        full = model(**_inputs()).logits
    assert install_cls_only(model)
    with torch.no_grad(), cls_only(model):
        fast = model(**_inputs()).logits
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-5)


def test_unsupported_modules_are_refused_and_run_unchanged() -> None:
    plain = torch.nn.Linear(3, 1)
    assert not install_cls_only(plain)
    with cls_only(plain) as active:
        assert not active
    decoder = BertForSequenceClassification(BertConfig(**SIZES, is_decoder=True))
    assert not install_cls_only(decoder)


def test_install_is_decided_once() -> None:
    model = _bert()
    assert install_cls_only(model)
    assert install_cls_only(model)  # second call: no second patch, same answer
    with torch.no_grad(), cls_only(model):
        first = model(**_inputs()).logits
    with torch.no_grad():
        full = model(**_inputs()).logits
    torch.testing.assert_close(first, full, rtol=0, atol=1e-5)


def test_the_block_applies_to_its_own_thread_only() -> None:
    model = _bert()
    assert install_cls_only(model)
    shapes: list[int] = []

    def other_thread() -> None:
        with torch.no_grad():
            shapes.append(model.bert(**_inputs()).last_hidden_state.shape[1])

    with torch.no_grad(), cls_only(model):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        shapes.append(model.bert(**_inputs()).last_hidden_state.shape[1])
    assert shapes == [17, 1]


def test_gradient_checkpointing_falls_back_to_the_full_layer() -> None:
    model = _bert()
    assert install_cls_only(model)
    model.gradient_checkpointing_enable()
    model.train()
    with cls_only(model):
        hidden = model.bert(**_inputs()).last_hidden_state
    assert hidden.shape[1] == 17
    hidden.sum().backward()  # recomputation sees the same layer it saved


def test_a_deep_copy_runs_its_own_weights() -> None:
    model = _bert()
    assert install_cls_only(model)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in twin.parameters():
            parameter.mul_(0.5)
        expected = twin(**_inputs()).logits
        with cls_only(twin):
            fast = twin(**_inputs()).logits
    torch.testing.assert_close(fast, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(expected, model(**_inputs()).logits)


def test_the_probe_refuses_a_rewrite_that_changes_the_logits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _bert()
    monkeypatch.setattr(
        cls_only_module, "_cls_forward", lambda layer, hidden, mask: hidden[:, :1] * 0
    )
    assert not install_cls_only(model)
    assert "forward" not in vars(model.bert.encoder.layer[-1])  # patch taken back
    with cls_only(model) as active:
        assert not active


def test_uninstall_restores_the_full_layer() -> None:
    model = _bert()
    assert install_cls_only(model)
    uninstall_cls_only(model)
    layer = model.bert.encoder.layer[-1]
    assert "forward" not in vars(layer)
    with cls_only(model) as active:
        assert not active
    assert not install_cls_only(model)
