"""CEDR-KNRM model: kernel features, masking, gradients, config checks, save/load."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from torch.func import functional_call
from transformers import AutoTokenizer

from crossrank.errors import ConfigError, ModelLoadError
from crossrank.models.cedr import CEDRKNRM, CEDRConfig, CEDRHead
from crossrank.models.cedr_io import is_cedr_directory, load_cedr, save_cedr
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.tiny import build_tiny_checkpoint

PAIRS = [("cats and dogs", "the cat is a cell"), ("gene", "protein gene cancer study results")]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("cedr") / "tiny", seed=5)


def _inputs(model_dir: Path, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """HF tokenizer inputs plus query/doc masks read off the tokenizer's sequence ids."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok([q for q, _ in pairs], [d for _, d in pairs], padding=True, return_tensors="pt")
    seq = [[-1 if s is None else s for s in enc.sequence_ids(i)] for i in range(len(pairs))]
    seq_ids = torch.tensor(seq)
    return {**enc, "query_mask": seq_ids == 0, "doc_mask": seq_ids == 1}


def _with_random_ranker(model: CEDRKNRM) -> CEDRKNRM:
    """Kernel weights start at 0; random ones make every feature count in the score."""
    with torch.no_grad():
        model.head.ranker.weight.normal_()
    return model


def _hand_head() -> CEDRHead:
    config = CEDRConfig(kernel_mus=(1.0, 0.7), layers=(0,), cls="none")
    return CEDRHead(config, num_states=1, cls_width=0)


# Positions: [CLS] q1 q2 [SEP] d1 d2 [SEP] [PAD]. The special and padded positions copy
# vectors of real tokens, so any leak of them into the features would change the numbers.
HAND_STATES = torch.tensor(
    [
        [
            [1.0, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [1.0, 0.0],
            [1.0, 0.0],
            [1.0, 1.0],
            [0.0, 1.0],
            [1.0, 1.0],
        ]
    ]
)
HAND_Q = torch.tensor([[False, True, True, False, False, False, False, False]])
HAND_D = torch.tensor([[False, False, False, False, True, True, False, False]])


def test_kernel_features_match_a_hand_computed_example() -> None:
    features = _hand_head().kernel_features((HAND_STATES,), HAND_Q, HAND_D)
    c = 1 / math.sqrt(2)  # cos(q, d2) for both query terms; cos(q1, d1) = 1, cos(q2, d1) = 0

    def rbf(s: float, mu: float, sigma: float) -> float:
        return math.exp(-((s - mu) ** 2) / (2 * sigma**2))

    exact = math.log(rbf(1, 1, 1e-3) + rbf(c, 1, 1e-3)) + math.log(1e-10)  # q2 matches nothing
    soft = math.log(rbf(1, 0.7, 0.1) + rbf(c, 0.7, 0.1)) + math.log(
        rbf(0, 0.7, 0.1) + rbf(c, 0.7, 0.1)
    )
    assert features[0].tolist() == pytest.approx([exact, soft], rel=1e-5)


def test_ranker_scores_scaled_kernel_features() -> None:
    head = _hand_head()
    with torch.no_grad():
        head.ranker.weight.copy_(torch.tensor([[0.5, -2.0]]))
        head.ranker.bias.fill_(0.25)
    features = head.kernel_features((HAND_STATES,), HAND_Q, HAND_D)[0]
    expected = 0.01 * (0.5 * features[0] - 2.0 * features[1]) + 0.25
    score = head((HAND_STATES,), torch.zeros(1, 0), HAND_Q, HAND_D)
    assert score.item() == pytest.approx(expected.item(), rel=1e-6)


def test_special_tokens_and_padding_never_reach_the_features() -> None:
    head = _hand_head()
    before = head.kernel_features((HAND_STATES,), HAND_Q, HAND_D)
    changed = HAND_STATES.clone()
    changed[0, [0, 3, 6, 7]] = torch.randn(4, 2)
    wider = torch.cat([changed, torch.randn(1, 5, 2)], dim=1)  # five more padded positions
    pad = torch.zeros(1, 5, dtype=torch.bool)
    after = head.kernel_features(
        (wider,), torch.cat([HAND_Q, pad], dim=1), torch.cat([HAND_D, pad], dim=1)
    )
    assert torch.equal(before, after)
    leaky = HAND_D.clone()
    leaky[0, 3] = True  # counting [SEP] as a document token does change them
    assert not torch.equal(before, head.kernel_features((HAND_STATES,), HAND_Q, leaky))


def test_score_does_not_depend_on_padding(tiny_dir: Path) -> None:
    model = CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig()).eval()
    _with_random_ranker(model)
    alone = _inputs(tiny_dir, PAIRS[1:])
    padded = _inputs(tiny_dir, [PAIRS[1], ("cats", "long filler text " * 12)])
    with torch.no_grad():
        a = model(**alone)
        b = model(**padded)
    assert padded["input_ids"].shape[1] > alone["input_ids"].shape[1] + 20
    assert a[0].item() == pytest.approx(b[0].item(), abs=1e-5)


def test_kernel_weights_start_at_zero(tiny_dir: Path) -> None:
    model = CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig(layers=(1, 2)))
    weight = model.head.ranker.weight[0]
    assert torch.all(weight[:22] == 0) and torch.any(weight[22:] != 0)


def test_score_mode_starts_as_the_cross_encoder(tiny_dir: Path) -> None:
    backbone = CrossEncoderModel.from_pretrained(tiny_dir)
    model = CEDRKNRM(backbone, CEDRConfig(cls="score")).eval()
    inputs = _inputs(tiny_dir, PAIRS)
    with torch.no_grad():
        logits = backbone.forward_logits(
            inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"]
        )
        assert torch.allclose(model(**inputs), logits[:, 0], atol=1e-6)


def test_unused_head_weights_are_frozen(tiny_dir: Path) -> None:
    vector = CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig(cls="vector"))
    frozen = {n for n, p in vector.named_parameters() if not p.requires_grad}
    assert frozen and all(".classifier." in f".{n}" or ".pooler." in n for n in frozen)
    score = CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig(cls="score"))
    assert all(p.requires_grad for p in score.parameters())
    assert vector.num_parameters(trainable_only=True) < vector.num_parameters()


def test_kernel_features_gradcheck() -> None:
    head = CEDRHead(CEDRConfig(cls="none"), num_states=2, cls_width=0).double()
    states = tuple(torch.randn(2, 7, 4, dtype=torch.float64, requires_grad=True) for _ in range(2))
    q_mask = torch.tensor([[0, 1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    d_mask = torch.tensor([[0, 0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 1, 0]], dtype=torch.bool)

    def features(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return head.kernel_features((a, b), q_mask, d_mask)

    assert torch.autograd.gradcheck(features, states, eps=1e-6, atol=1e-5)


def test_end_to_end_gradcheck_through_the_encoder(tiny_dir: Path) -> None:
    model = CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig())
    model = _with_random_ranker(model).double().eval()
    inputs = _inputs(tiny_dir, PAIRS)
    names = ("encoder.bert.encoder.layer.1.output.LayerNorm.weight", "head.ranker.weight")
    params = {
        name: p.detach().clone().requires_grad_(True)
        for name, p in model.named_parameters()
        if name in names
    }
    assert set(params) == set(names)

    def scores(norm: torch.Tensor, ranker: torch.Tensor) -> torch.Tensor:
        return functional_call(model, {names[0]: norm, names[1]: ranker}, kwargs=inputs)

    # fast_mode checks a random projection of the Jacobian: one backward, few forwards.
    assert torch.autograd.gradcheck(
        scores, tuple(params[n] for n in names), eps=1e-6, atol=1e-5, fast_mode=True
    )


def test_save_load_round_trip_gives_identical_scores(tiny_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig(layers=(0, 2)))
    model = _with_random_ranker(model).eval()
    path = save_cedr(model, tmp_path / "cedr")
    assert is_cedr_directory(path) and not is_cedr_directory(tiny_dir)
    loaded = load_cedr(path)
    assert loaded.config == model.config
    inputs = _inputs(tiny_dir, PAIRS)
    with torch.no_grad():
        assert torch.equal(model(**inputs), loaded(**inputs))
    # The backbone directory is a plain cross-encoder of its own.
    assert CrossEncoderModel.from_pretrained(path / "backbone").heads == model.backbone.heads


def test_load_rejects_other_schema_versions(tiny_dir: Path, tmp_path: Path) -> None:
    path = save_cedr(
        CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig()), tmp_path / "m"
    )
    manifest = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**manifest, "schema_version": 2}))
    with pytest.raises(ModelLoadError, match="schema_version"):
        load_cedr(path)
    with pytest.raises(ModelLoadError, match="not a saved CEDR model"):
        load_cedr(tmp_path / "missing")


def test_config_validation(tiny_dir: Path) -> None:
    with pytest.raises(ConfigError, match="cls"):
        CEDRConfig(cls="pooled")
    with pytest.raises(ConfigError, match="layers"):
        CEDRConfig(layers=(1, 1))
    with pytest.raises(ConfigError, match="exact-match"):
        CEDRConfig(kernel_mus=(0.5, 0.1))
    with pytest.raises(ConfigError, match="schema_version"):
        dataclasses.replace(CEDRConfig(), schema_version=9)
    with pytest.raises(ConfigError, match=r"layers \[3\] out of range"):
        CEDRKNRM(CrossEncoderModel.from_pretrained(tiny_dir), CEDRConfig(layers=(0, 3)))
