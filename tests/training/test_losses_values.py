"""Every objective against a value computed by hand (arithmetic in the comments).

Notation: sp(x) = log(1 + e^x) (softplus), so -log sigmoid(x) = sp(-x).
"""

from __future__ import annotations

import math

import pytest
import torch

from crossrank.training.losses import (
    bce,
    graded_ce,
    hinge,
    infonce,
    infonce_embeddings,
    kl_distillation,
    lambdaloss,
    listnet,
    margin_mse,
    mse,
    ranknet,
    softmax_ce,
)


def sp(x: float) -> float:
    return math.log1p(math.exp(x))


def t(values: object, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def close(value: torch.Tensor, expected: float) -> None:
    assert value.dim() == 0
    assert value.item() == pytest.approx(expected, abs=1e-5)


# --- pointwise ---------------------------------------------------------------------------


def test_bce_hand_value() -> None:
    # -log sigmoid(2) = sp(-2) = 0.126928; -log(1 - sigmoid(-1)) = sp(-1) = 0.313262
    # mean = 0.220095
    close(bce(t([2.0, -1.0]), t([1.0, 0.0])), 0.220095)


def test_bce_label_smoothing_moves_targets_to_half() -> None:
    # eps = 0.2: targets 1 -> 0.9, 0 -> 0.1; BCE-with-logits l = sp(x) - x * y
    # x=2: sp(2) - 1.8 = 2.126928 - 1.8 = 0.326928; x=-1: sp(-1) + 0.1 = 0.413262
    # mean = 0.370095
    close(bce(t([2.0, -1.0]), t([1.0, 0.0]), label_smoothing=0.2), 0.370095)


def test_bce_mask_ignores_padding_and_accepts_2d() -> None:
    close(bce(t([2.0, -1.0, 50.0]), t([1.0, 0.0, 0.0]), t([1, 1, 0], torch.bool)), 0.220095)
    close(bce(t([[2.0], [-1.0]]), t([[1.0], [0.0]])), 0.220095)


def test_graded_ce_hand_value_and_smoothing() -> None:
    logits = t([[1.0, 0.0, 0.0]])
    # logsumexp = log(e + 2) = 1.551445; -log p(grade 0) = 1.551445 - 1 = 0.551445
    close(graded_ce(logits, torch.tensor([0])), 0.551445)
    # eps = 0.3, k = 3: target [0.7 + 0.1, 0.1, 0.1]; 0.8 * 0.551445 + 0.2 * 1.551445 = 0.751445
    close(graded_ce(logits, torch.tensor([0]), label_smoothing=0.3), 0.751445)


def test_graded_ce_mask_drops_rows() -> None:
    logits = t([[1.0, 0.0, 0.0], [9.0, 0.0, 0.0]])
    close(graded_ce(logits, torch.tensor([0, 2]), t([1, 0], torch.bool)), 0.551445)


def test_mse_hand_value() -> None:
    # ((1 - 0)^2 + (2 - 4)^2) / 2 = 2.5
    close(mse(t([1.0, 2.0]), t([0.0, 4.0])), 2.5)


# --- pairwise ----------------------------------------------------------------------------

GROUP = t([[1.0, 2.0, 0.0]])
REL = torch.tensor([[2, 1, 0]])


def test_ranknet_hand_value() -> None:
    # pairs (0,1): s0-s1 = -1 -> sp(1) = 1.313262; (0,2): +1 -> sp(-1) = 0.313262;
    # (1,2): +2 -> sp(-2) = 0.126928; mean over 3 pairs = 1.753452 / 3 = 0.584484
    close(ranknet(GROUP, REL), 0.584484)
    # sigma = 2 doubles every difference: (sp(2) + sp(-2) + sp(-4)) / 3 = 0.757335
    close(ranknet(GROUP, REL, sigma=2.0), 0.757335)


def test_ranknet_padded_group_adds_no_pairs() -> None:
    logits = t([[1.0, 2.0, 0.0], [0.5, 9.0, -9.0]])
    relevance = torch.tensor([[2, 1, 0], [1, 0, 5]])
    mask = t([[1, 1, 1], [1, 0, 0]], torch.bool)
    close(ranknet(logits, relevance, mask), 0.584484)


def test_ranknet_no_pairs_is_zero_with_gradient() -> None:
    logits = t([[1.0, 2.0]]).requires_grad_()
    loss = ranknet(logits, torch.tensor([[1, 1]]))
    loss.backward()
    assert loss.item() == 0.0
    assert logits.grad is not None
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_hinge_hand_value() -> None:
    # margin 1: (0,1): max(0, 1 - (-1)) = 2; (0,2): 1 - 1 = 0; (1,2): max(0, 1 - 2) = 0
    # mean = 2 / 3
    close(hinge(GROUP, REL), 2 / 3)
    # margin 3: (0,1): 4; (0,2): 2; (1,2): 1 -> 7 / 3
    close(hinge(GROUP, REL, margin=3.0), 7 / 3)


# --- listwise ----------------------------------------------------------------------------


def test_softmax_ce_hand_values() -> None:
    logits = t([[1.0, 0.0, 0.0]])
    # log p = [1 - log(e + 2), -log(e + 2), -log(e + 2)] = [-0.551445, -1.551445, -1.551445]
    close(softmax_ce(logits, torch.tensor([[1, 0, 0]])), 0.551445)
    # two positives: target [0.5, 0.5, 0] -> 0.5 * 0.551445 + 0.5 * 1.551445 = 1.051445
    close(softmax_ce(logits, torch.tensor([[1, 1, 0]])), 1.051445)
    # eps = 0.3 over 3 members: target [0.7 + 0.1, 0.1, 0.1] -> 0.751445
    close(softmax_ce(logits, torch.tensor([[1, 0, 0]]), label_smoothing=0.3), 0.751445)


def test_softmax_ce_variable_group_sizes() -> None:
    # Group 2 is group 1 padded with a huge logit that must take no probability mass.
    logits = t([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 40.0]])
    labels = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 1]])
    mask = t([[1, 1, 1, 1], [1, 1, 1, 0]], torch.bool)
    # group 1: -log(e / (e + 3)) = log(1 + 3/e) = 0.742183; group 2: 0.551445
    close(softmax_ce(logits, labels, mask), (math.log(1 + 3 / math.e) + 0.551445) / 2)


def test_listnet_hand_value() -> None:
    # target softmax([1, 0]) = [0.731059, 0.268941]; log softmax([1, 0]) = [-sp(-1), -sp(1)]
    # loss = 0.731059 * 0.313262 + 0.268941 * 1.313262 = 0.582203
    close(listnet(t([[1.0, 0.0]]), t([[1.0, 0.0]])), 0.582203)
    # uniform logits: -sum p * log(1/2) = log 2 whatever the target
    close(listnet(t([[0.0, 0.0]]), t([[3.0, 0.0]])), math.log(2))


# LambdaLoss, 3 documents: logits [2, 1, 0] rank them 1, 2, 3; relevance [0, 2, 1].
# gains 2^rel - 1 = [0, 3, 1]; ideal order [3, 1, 0]: maxDCG = 3/log2(2) + 1/log2(3) + 0
#   = 3 + 0.630930 = 3.630930; G = [0, 0.826235, 0.275412]
# 1/D(rank) = [1/log2(2), 1/log2(3), 1/log2(4)] = [1, 0.630930, 0.5]
# informative pairs (i more relevant than j): (1,0), (2,0), (1,2)
# -log2 sigmoid(s_i - s_j) = sp(-(s_i - s_j)) / ln 2:
#   (1,0): sp(1)/ln2 = 1.894636; (2,0): sp(2)/ln2 = 3.068508; (1,2): sp(-1)/ln2 = 0.451941
# |ΔnDCG|: (1,0): 0.826235 * |0.630930 - 1| = 0.304940
#          (2,0): 0.275412 * |0.5 - 1| = 0.137706
#          (1,2): 0.550823 * |0.630930 - 0.5| = 0.072119
LAMBDA_LOGITS = t([[2.0, 1.0, 0.0]])
LAMBDA_REL = torch.tensor([[0, 2, 1]])


def test_lambdaloss_lambdarank_weighting_hand_value() -> None:
    # 0.304940 * 1.894636 + 0.137706 * 3.068508 + 0.072119 * 0.451941
    #   = 0.577750 + 0.422552 + 0.032594 = 1.032893
    close(lambdaloss(LAMBDA_LOGITS, LAMBDA_REL, weighting="lambdarank"), 1.032893)


def test_lambdaloss_ndcg2pp_weighting_hand_value() -> None:
    # delta(k) = |1/log2(1+k) - 1/log2(2+k)|: delta(1) = 1 - 0.630930 = 0.369070,
    # delta(2) = 0.630930 - 0.5 = 0.130930. Rank gaps: (1,0): 1, (2,0): 2, (1,2): 1.
    # w = mu * delta * |G_i - G_j| + |ΔnDCG| with mu = 10:
    #   (1,0): 10 * 0.369070 * 0.826235 + 0.304940 = 3.049409 + 0.304940 = 3.354349
    #   (2,0): 10 * 0.130930 * 0.275412 + 0.137706 = 0.360597 + 0.137706 = 0.498303
    #   (1,2): 10 * 0.369070 * 0.550823 + 0.072119 = 2.032924 + 0.072119 = 2.105043
    # loss = 3.354349 * 1.894636 + 0.498303 * 3.068508 + 2.105043 * 0.451941 = 8.835623
    close(lambdaloss(LAMBDA_LOGITS, LAMBDA_REL), 8.835623)
    # mu = 0 leaves only the LambdaRank term
    close(lambdaloss(LAMBDA_LOGITS, LAMBDA_REL, mu=0.0), 1.032893)


def test_lambdaloss_padding_and_group_mean() -> None:
    # Groups 1 and 2 are the 3-document example padded with a 4th member (a logit that
    # would rank first, a label that would be the best); group 3 has equal labels, so no
    # informative pair, and is left out of the mean: (1.032893 + 1.032893) / 2.
    logits = t([[2.0, 1.0, 0.0, -5.0], [2.0, 1.0, 0.0, 9.0], [0.0, 1.0, 2.0, 3.0]])
    relevance = torch.tensor([[0, 2, 1, 0], [0, 2, 1, 3], [1, 1, 1, 1]])
    mask = t([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1]], torch.bool)
    close(lambdaloss(logits, relevance, mask, weighting="lambdarank"), 1.032893)


# --- contrastive -------------------------------------------------------------------------


def test_infonce_in_batch_hand_value() -> None:
    scores = t([[2.0, 0.0], [1.0, 1.0]])
    # row 0: -log(e^2 / (e^2 + 1)) = sp(-2) = 0.126928; row 1: log 2 = 0.693147
    close(infonce(scores, temperature=1.0), (0.126928 + 0.693147) / 2)
    # temperature 0.5 doubles the scores: (sp(-4) + log 2) / 2 = 0.355649
    close(infonce(scores, temperature=0.5), 0.355649)


def test_infonce_positive_first() -> None:
    # -log(e^3 / (e^3 + 2e)) = log(1 + 2e^-2) = 0.239545
    close(infonce(t([[3.0, 1.0, 1.0]]), temperature=1.0, in_batch=False), 0.239545)


def test_infonce_embeddings_with_hard_negatives_in_batch() -> None:
    queries = t([[1.0, 0.0], [0.0, 1.0]])
    negatives = t([[[0.6, 0.8]], [[-1.0, 0.0]]])
    # candidates [p0, p1, n0, n1] = [[1,0],[0,1],[0.6,0.8],[-1,0]] (all unit norm)
    # row 0 scores [1, 0, 0.6, -1]: log(1 + e^-1 + e^-0.4 + e^-2) = 0.776355
    # row 1 scores [0, 1, 0.8, 0]:  log(1 + e^-1 + e^-0.2 + e^-1) = 0.937852
    loss = infonce_embeddings(queries, queries, negatives, temperature=1.0)
    close(loss, (0.776355 + 0.937852) / 2)


# --- distillation ------------------------------------------------------------------------


def test_margin_mse_hand_value() -> None:
    # student margins [3-1, 3-2] = [2, 1]; teacher margins [5-2, 5-4] = [3, 1]
    # ((2-3)^2 + (1-1)^2) / 2 = 0.5
    close(margin_mse(t([[3.0, 1.0, 2.0]]), t([[5.0, 2.0, 4.0]])), 0.5)
    # masking the second negative leaves only (2-3)^2 = 1
    mask = t([[1, 1, 0]], torch.bool)
    close(margin_mse(t([[3.0, 1.0, 2.0]]), t([[5.0, 2.0, 4.0]]), mask), 1.0)


def test_kl_hand_value_and_temperature() -> None:
    # teacher p = softmax([1, 0]) = [0.731059, 0.268941]; student q = [0.5, 0.5]
    # KL = 0.731059 * log(1.462117) + 0.268941 * log(0.537883) = 0.110944
    close(kl_distillation(t([[0.0, 0.0]]), t([[1.0, 0.0]])), 0.110944)
    # T = 2: p = softmax([0.5, 0]) = [0.622459, 0.377541];
    # KL = 0.622459 * log(1.244918) + 0.377541 * log(0.755082) = 0.030300; * T^2 = 0.121199
    close(kl_distillation(t([[0.0, 0.0]]), t([[1.0, 0.0]]), temperature=2.0), 0.121199)


def test_kl_ignores_padded_members() -> None:
    mask = t([[1, 1, 0]], torch.bool)
    close(kl_distillation(t([[0.0, 0.0, 7.0]]), t([[1.0, 0.0, -3.0]]), mask), 0.110944)
