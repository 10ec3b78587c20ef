"""Every model: gradient check in float64, padding invariance, shapes, inspection accessors."""

from __future__ import annotations

import pytest
import torch
from interaction_tiny import ALL_CONFIGS, PERIOD, TINY_CONFIGS, tiny_model
from torch.func import functional_call

from crossrank.errors import ConfigError
from crossrank.models.interaction import (
    CoAttentionConfig,
    ConvKNRMConfig,
    KNRMConfig,
    NeuralTensorConfig,
    build_interaction_model,
)
from crossrank.models.interaction.coattention import sentence_index

# Two pairs; the second query has one padded position, the second doc two.
Q_IDS = torch.tensor([[2, 3, 8], [6, 8, 0]])
Q_MASK = torch.tensor([[True, True, True], [True, True, False]])
D_IDS = torch.tensor([[2, 5, PERIOD, 9, 3, PERIOD], [7, 8, PERIOD, 6, 0, 0]])
D_MASK = torch.tensor([[True] * 6, [True, True, True, True, False, False]])


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_gradcheck_over_all_trainable_parameters(name: str) -> None:
    model = tiny_model(name)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = tuple(
        p.detach().clone().requires_grad_(True)
        for n, p in model.named_parameters()
        if p.requires_grad
    )
    assert any(n.startswith("embeddings.") for n in names)  # embeddings are trainable here

    def scores(*values: torch.Tensor) -> torch.Tensor:
        return functional_call(
            model, dict(zip(names, values, strict=True)), (Q_IDS, Q_MASK, D_IDS, D_MASK)
        )

    assert torch.autograd.gradcheck(scores, params, eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_padding_does_not_change_the_score(name: str) -> None:
    model = tiny_model(name, seed=1)
    alone = model(Q_IDS[1:, :2], Q_MASK[1:, :2], D_IDS[1:, :4], D_MASK[1:, :4])
    # Extra padding filled with real word ids: only the mask may decide what is padding.
    q_ids = torch.cat([Q_IDS[1:, :2], torch.tensor([[4, 5, PERIOD]])], dim=1)
    d_ids = torch.cat([D_IDS[1:, :4], torch.tensor([[PERIOD, 2, 3, 2, PERIOD]])], dim=1)
    q_mask = torch.tensor([[True, True, False, False, False]])
    d_mask = torch.tensor([[True] * 4 + [False] * 5])
    padded = model(q_ids, q_mask, d_ids, d_mask)
    assert torch.allclose(alone, padded, atol=1e-12)
    batched = model(Q_IDS, Q_MASK, D_IDS, D_MASK)
    assert torch.allclose(batched[1], alone[0], atol=1e-12)


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_shapes_and_interaction_matrix(name: str) -> None:
    model = tiny_model(name)
    assert model(Q_IDS, Q_MASK, D_IDS, D_MASK).shape == (2,)
    matrix = model.interaction_matrix(Q_IDS, Q_MASK, D_IDS, D_MASK)
    assert matrix.shape == (2, 3, 6)
    assert torch.all(matrix[1, 2] == 0) and torch.all(matrix[1, :, 4:] == 0)
    assert matrix[0].abs().sum() > 0


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_frozen_embeddings_get_no_gradient(name: str) -> None:
    model = tiny_model(name, trainable=False)
    model(Q_IDS, Q_MASK, D_IDS, D_MASK).sum().backward()
    assert model.embeddings.embedding.weight.grad is None
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.num_parameters(trainable_only=True) < model.num_parameters()


def test_empty_texts_give_finite_scores() -> None:
    nothing = torch.zeros(1, 1, dtype=torch.bool)
    ids = torch.zeros(1, 1, dtype=torch.long)
    for name in TINY_CONFIGS:
        model = tiny_model(name)
        assert torch.isfinite(model(ids, nothing, D_IDS[:1], D_MASK[:1])).all(), name
        assert torch.isfinite(model(Q_IDS[:1], Q_MASK[:1], ids, nothing)).all(), name


def test_knrm_kernel_activations_sum_to_the_kernel_features() -> None:
    model = tiny_model("knrm")
    per_term = model.kernel_activations(Q_IDS, Q_MASK, D_IDS, D_MASK)
    assert per_term.shape == (2, 3, 11)
    assert torch.all(per_term[1, 2] == 0)
    features = per_term.sum(1) * model.config.feature_scale
    assert torch.allclose(model.ranker(features).squeeze(-1), model(Q_IDS, Q_MASK, D_IDS, D_MASK))


def test_knrm_exact_match_kernel_counts_exact_matches() -> None:
    model = tiny_model("knrm")
    per_term = model.kernel_activations(Q_IDS[:1], Q_MASK[:1], D_IDS[:1], D_MASK[:1])
    # "cats" (id 2) and "purr" (id 3) occur once in doc 0, "fever" (id 8) does not.
    assert per_term[0, :2, 0].exp().tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert per_term[0, 2, 0].item() == pytest.approx(torch.log(torch.tensor(1e-10)).item())


def test_conv_knrm_cross_matches_every_ngram_pair() -> None:
    model = tiny_model("conv_knrm")
    assert model.kernel_activations(Q_IDS, Q_MASK, D_IDS, D_MASK).shape == (2, 9, 11)
    assert model.kernel_row_labels()[1] == "q1-gram x d2-gram"
    assert model.ranker.in_features == 9 * 11


def test_sentence_index_is_vectorised_and_ignores_padding() -> None:
    end_ids = torch.tensor([PERIOD])
    index = sentence_index(D_IDS, D_MASK, end_ids)
    assert index.tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]]


def test_coattention_rounds_are_configurable() -> None:
    one = build_interaction_model(
        "coattention",
        tiny_model("knrm").embeddings,
        CoAttentionConfig(hidden_dim=4, ffn_dim=6, rounds=1),
    )
    three = build_interaction_model(
        "coattention",
        tiny_model("knrm").embeddings,
        CoAttentionConfig(hidden_dim=4, ffn_dim=6, rounds=3),
    )
    assert len(one.rounds) == 1 and len(three.rounds) == 3
    assert three.num_parameters() > one.num_parameters()


def test_tensor_model_flops_and_parameters() -> None:
    pooled = tiny_model("tensor-low_rank-mean")
    tokens = tiny_model("tensor-low_rank-token_max")
    assert pooled.tensor_parameters() == pooled.tensor.num_parameters()
    assert tokens.flops_per_pair(3, 6) > pooled.flops_per_pair(3, 6)
    projection = 2 * (3 + 6) * 4 * 3
    assert pooled.flops_per_pair(3, 6) == projection + pooled.tensor.flops_per_pair(1, 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: KNRMConfig(kernel_mus=(0.5,)),
        lambda: KNRMConfig(feature_scale=0.0),
        lambda: ConvKNRMConfig(max_ngram=0),
        lambda: NeuralTensorConfig(factorization="svd"),
        lambda: NeuralTensorConfig(pooling="sum"),
        lambda: NeuralTensorConfig(hidden_dim=0),
        lambda: CoAttentionConfig(rounds=0),
        lambda: CoAttentionConfig(sentence_end_ids=(-1,)),
        lambda: KNRMConfig(schema_version=99),
    ],
)
def test_invalid_configs_raise_config_error(make) -> None:
    with pytest.raises(ConfigError):
        make()


def test_wrong_config_type_is_rejected() -> None:
    with pytest.raises(ConfigError, match="KNRMConfig"):
        build_interaction_model("knrm", tiny_model("knrm").embeddings, ConvKNRMConfig())
    with pytest.raises(ConfigError, match="unknown interaction architecture"):
        build_interaction_model("drmm", tiny_model("knrm").embeddings)


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_integer_masks_are_accepted_and_bad_shapes_rejected(name: str) -> None:
    model = tiny_model(name)
    expected = model(Q_IDS, Q_MASK, D_IDS, D_MASK)
    assert torch.equal(model(Q_IDS, Q_MASK.long(), D_IDS, D_MASK.long()), expected)
    with pytest.raises(ConfigError, match="expected q_ids/q_mask"):
        model(Q_IDS, Q_MASK[:, :2], D_IDS, D_MASK)
    with pytest.raises(ConfigError, match="expected q_ids/q_mask"):
        model(Q_IDS[:1], Q_MASK[:1], D_IDS, D_MASK)
    with pytest.raises(ConfigError, match="expected q_ids/q_mask"):
        model.interaction_matrix(Q_IDS[0], Q_MASK[0], D_IDS[0], D_MASK[0])
