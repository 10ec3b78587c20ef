"""The loss registry, LossConfig (as a TOML recipe names it) and CombinedLoss."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest
import torch

from crossrank.errors import ConfigError
from crossrank.training.losses import (
    LOSSES,
    CombinedLoss,
    LossBatch,
    LossConfig,
    build_loss,
    kl_distillation,
    make_loss,
    ranknet,
    softmax_ce,
)

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]])
LABELS = torch.tensor([[1, 0, 0], [0, 1, 0]])
TEACHER = torch.tensor([[3.0, 1.0, 0.0], [0.5, 2.0, 1.0]])


def test_registry_names_match_the_recipe_vocabulary() -> None:
    expected = {"bce", "graded_ce", "mse", "ranknet", "hinge", "softmax_ce", "listnet"}
    expected |= {"lambdaloss", "infonce", "margin_mse", "kl"}
    assert set(LOSSES) == expected


def test_config_from_toml_builds_the_named_loss() -> None:
    recipe = tomllib.loads(
        """
        [[loss]]
        name = "softmax_ce"
        params = { label_smoothing = 0.1 }

        [[loss]]
        name = "kl"
        weight = 0.5
        params = { temperature = 2 }
        """
    )
    configs = [LossConfig.from_dict(table) for table in recipe["loss"]]
    loss = build_loss(configs)
    batch = LossBatch(LOGITS, labels=LABELS, teacher=TEACHER)
    expected_ce = softmax_ce(LOGITS, LABELS, label_smoothing=0.1)
    expected_kl = kl_distillation(LOGITS, TEACHER, temperature=2.0)
    parts = loss.breakdown(batch)
    assert parts.keys() == {"softmax_ce", "kl"}
    torch.testing.assert_close(parts["softmax_ce"], expected_ce)
    torch.testing.assert_close(parts["kl"], 0.5 * expected_kl)
    torch.testing.assert_close(loss(batch), expected_ce + 0.5 * expected_kl)
    assert [LossConfig.from_dict(c.to_dict()) for c in configs] == configs


def test_config_is_frozen_hashable_and_copies_params() -> None:
    params = {"sigma": 2.0}
    config = LossConfig("ranknet", params=params)
    params["sigma"] = 5.0
    assert config.params["sigma"] == 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "hinge"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.params["sigma"] = 3.0  # type: ignore[index]
    assert hash(config) == hash(LossConfig("ranknet", params={"sigma": 2.0}))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "focal"}, r"unknown loss 'focal'"),
        (
            {"name": "ranknet", "params": {"temperature": 1.0}},
            r"'ranknet' has no parameter 'temperature'; allowed: \['sigma'\]",
        ),
        ({"name": "mse", "params": {"sigma": 1.0}}, r"allowed: none"),
        (
            {"name": "kl", "params": {"temperature": -1}},
            r"kl: temperature must be a finite number > 0, got -1",
        ),
        (
            {"name": "softmax_ce", "params": {"label_smoothing": "0.1"}},
            r"label_smoothing must be a number",
        ),
        ({"name": "lambdaloss", "params": {"weighting": "ndcg1"}}, r"weighting must be one of"),
        ({"name": "infonce", "params": {"in_batch": 1}}, r"in_batch must be true or false"),
        ({"name": "bce", "weight": -0.5}, r"weight must be finite and >= 0, got -0.5"),
        ({"name": "bce", "weight": float("nan")}, r"weight must be finite"),
    ],
)
def test_bad_config_raises(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LossConfig(**kwargs)  # type: ignore[arg-type]


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown keys \['temperature'\]"):
        LossConfig.from_dict({"name": "kl", "temperature": 2.0})


def test_make_loss_needs_the_fields_it_reads() -> None:
    loss = make_loss(LossConfig("margin_mse"))
    with pytest.raises(ConfigError, match=r"'margin_mse' needs batch.teacher"):
        loss(LossBatch(LOGITS, labels=LABELS))


def test_every_registered_loss_runs_on_a_batch() -> None:
    teacher_batch = LossBatch(LOGITS, labels=LABELS, teacher=TEACHER)
    for name in LOSSES:
        if name == "graded_ce":
            batch = LossBatch(LOGITS, labels=torch.tensor([0, 2]))
        elif name in ("bce", "mse"):
            batch = LossBatch(LOGITS, labels=LABELS.float())
        else:
            batch = teacher_batch
        value = make_loss(LossConfig(name))(batch)
        assert value.dim() == 0, name
        assert torch.isfinite(value), name


def test_combined_loss_weights_and_duplicate_names() -> None:
    loss = build_loss([LossConfig("ranknet"), LossConfig("ranknet", 2.0, {"sigma": 2.0})])
    parts = loss.breakdown(LossBatch(LOGITS, labels=LABELS))
    assert list(parts) == ["ranknet#0", "ranknet#1"]
    torch.testing.assert_close(parts["ranknet#1"], 2.0 * ranknet(LOGITS, LABELS, sigma=2.0))


def test_combined_loss_skips_zero_weight_terms() -> None:
    loss = build_loss([LossConfig("ranknet"), LossConfig("kl", weight=0.0)])
    # kl would need a teacher; with weight 0 it is not evaluated at all.
    assert list(loss.breakdown(LossBatch(LOGITS, labels=LABELS))) == ["ranknet"]


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ([], r"at least one term"),
        ([("a", 0.0, make_loss(LossConfig("ranknet")))], r"weight > 0"),
        ([("a", 1.0, make_loss(LossConfig("ranknet")))] * 2, r"must be unique"),
        ([("a", float("inf"), make_loss(LossConfig("ranknet")))], r"finite"),
    ],
)
def test_combined_loss_validates_terms(terms: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CombinedLoss(terms)
