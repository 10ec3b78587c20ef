"""Training recipes: frozen, validated dataclasses read from (and written back to) TOML.

A recipe names the backbone, precision and seed, how dev evaluation and checkpoints run, and a
list of *stages* trained one after the other (each with its own data source, groups, optimiser
and schedule). Every value is checked when the recipe is loaded; an unknown key is an error
naming the key and the file, so a typo never silently falls back to a default.

Example:
    >>> config = parse_config('''
    ... schema_version = 1
    ... [model]
    ... backbone = "path/to/encoder"
    ... [[stages]]
    ... name = "qrels"
    ... source = "train_qrels"
    ... lr = 2e-5
    ... ''', source="recipe.toml")
    >>> config.stages[0].group_size, config.stages[0].losses[0].name
    (8, 'softmax_ce')
    >>> parse_config('[[stages]]\\nname = "s"\\nsource = "train_qrels"\\nlrr = 1', source="r.toml")
    Traceback (most recent call last):
    crossrank.errors.ConfigError: r.toml: unknown key 'stages[0].lrr' (known: ...)
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from crossrank.errors import ConfigError, MissingDataError
from crossrank.evaluation.metrics import parse_metrics
from crossrank.training.arch_config import (
    ARCHS,
    CEDR,
    CROSS_ENCODER,
    ENCODER_ONLY,
    ArchConfig,
    interaction_config,
    parse_interaction,
)
from crossrank.training.config_checks import (
    choice,
    finite,
    non_negative,
    parse_size,
    positive,
    probability,
)
from crossrank.training.config_io import coerce_table, dump_toml, to_plain
from crossrank.training.losses import LossConfig

__all__ = [
    "ARCHS",
    "CEDR",
    "CROSS_ENCODER",
    "NEGATIVE_SOURCES",
    "PRECISIONS",
    "SCHEDULES",
    "SCHEMA_VERSION",
    "SOURCES",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "OutputConfig",
    "StageConfig",
    "TrainConfig",
    "interaction_config",
    "load_config",
    "parse_config",
    "parse_size",
]

SCHEMA_VERSION = 1
SOURCES = ("synthetic_title", "synthetic_sentence", "train_qrels")
PRECISIONS = ("fp32", "bf16", "fp16")
SCHEDULES = ("linear", "cosine", "constant")
# Negative sources a stage can mix: BM25 and dense (bi-encoder) hard negatives, model-mined
# (the current model's best non-relevant candidates, guarded) and random.
NEGATIVE_SOURCES = ("bm25", "dense", "model", "random")


@dataclass(frozen=True)
class ModelConfig(ArchConfig):
    """The model to train and its input/regularisation settings.

    ``arch``, ``interaction`` and ``train_embeddings`` choose the architecture (see
    :class:`~crossrank.training.arch_config.ArchConfig`): ``cross-encoder`` (a transformer
    loaded from ``backbone``), ``cedr``, or an interaction architecture whose ``backbone``
    names its term embeddings (``all-MiniLM-L6-v2``'s WordPiece matrix or a word2vec/GloVe
    text file).

    ``keep_layers`` prunes the encoder to the listed layers (e.g. ``[0, 2, 5]`` for a fast CPU
    variant); ``hidden_dropout`` / ``attention_dropout`` override the checkpoint's values
    (cross-encoder and cedr only). Queries are cut to ``max_query_length`` tokens; a cross-encoder's
    document fills the rest of ``max_length``, an interaction model's document is cut to
    ``max_length`` tokens. ``chunk_tokens`` feeds each micro-batch's pairs, sorted by length,
    in forward chunks of at most that many padded tokens (far less padding; unset: one forward
    per micro-batch). ``head_bias`` starts a fresh (plain-encoder) head's output bias at that
    value, e.g. the log-odds of a relevant candidate, so a pointwise loss term does not have
    to move it there at AdamW's ~lr per step (cross-encoder only; refused for a trained head).
    """

    backbone: str = ""
    max_length: int = 512
    max_query_length: int = 64
    keep_layers: tuple[int, ...] | None = None
    hidden_dropout: float | None = None
    attention_dropout: float | None = None
    chunk_tokens: int | None = None
    head_bias: float | None = None

    def __post_init__(self) -> None:
        positive("model.max_length", self.max_length)
        positive("model.max_query_length", self.max_query_length)
        positive("model.chunk_tokens", self.chunk_tokens)
        if self.max_query_length >= self.max_length:
            raise ConfigError(
                f"model.max_query_length ({self.max_query_length}) must be < "
                f"model.max_length ({self.max_length})"
            )
        if self.keep_layers is not None:
            layers = list(self.keep_layers)
            if not layers or any(i < 0 for i in layers) or layers != sorted(set(layers)):
                raise ConfigError(
                    f"model.keep_layers must be distinct, increasing layer indices >= 0, "
                    f"got {layers}"
                )
        probability("model.hidden_dropout", self.hidden_dropout)
        probability("model.attention_dropout", self.attention_dropout)
        self._check_arch({name: getattr(self, name) for name in ENCODER_ONLY})
        if self.head_bias is not None and (
            self.arch != CROSS_ENCODER or not finite(self.head_bias)
        ):
            raise ConfigError(
                f"model.head_bias must be a finite number, for arch 'cross-encoder' only; "
                f"got {self.head_bias!r} with arch {self.arch!r}"
            )

    def __hash__(self) -> int:
        return hash((self.backbone, self.arch, tuple(sorted(self.interaction.items()))))


@dataclass(frozen=True)
class DataConfig:
    """BEIR collection directory and the qrels splits to train and evaluate on.

    An empty ``dev_split`` (``""``) turns dev evaluation off. ``dense_model`` is the
    bi-encoder that retrieves ``dense`` negatives (unset: the offline all-MiniLM-L6-v2).
    """

    path: str = ""
    train_split: str = "train"
    dev_split: str = "dev"
    dense_model: str | None = None


@dataclass(frozen=True)
class EvalConfig:
    """Dev evaluation: rerank each dev query's BM25 ``top_k`` and score ``metric``.

    ``interpolation_weight`` is the model's weight when final.json also reports the z-score
    interpolation of model and BM25 scores; ``min_delta`` is the improvement early stopping
    needs to reset its patience.
    """

    metric: str = "nDCG@10"
    top_k: int = 20
    batch_size: int = 64
    interpolation_weight: float = 0.5
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        parse_metrics([self.metric])
        positive("eval.top_k", self.top_k)
        positive("eval.batch_size", self.batch_size)
        if not 0.0 <= self.interpolation_weight <= 1.0:
            raise ConfigError(
                f"eval.interpolation_weight must be in [0, 1], got {self.interpolation_weight!r}"
            )
        non_negative("eval.min_delta", self.min_delta)


@dataclass(frozen=True)
class OutputConfig:
    """Checkpointing, logging and how the final weights are written.

    ``final_weights`` = ``best`` keeps the weights of the best dev evaluation (the last
    weights when there is no dev split); ``last`` always keeps the last weights.
    ``average_best`` = k >= 2 (with ``best``) also keeps the k best evaluations' weights and
    ends with their average when it beats the best one on dev
    (:mod:`~crossrank.training.averaging`).
    """

    checkpoint_every: int = 500
    log_every: int = 10
    max_shard_size: str = "15MB"
    keep_checkpoints: bool = False
    final_weights: str = "best"
    average_best: int = 1

    def __post_init__(self) -> None:
        choice("output.final_weights", self.final_weights, ("best", "last"))
        positive("output.average_best", self.average_best)
        positive("output.checkpoint_every", self.checkpoint_every)
        positive("output.log_every", self.log_every)
        parse_size(self.max_shard_size, "output.max_shard_size")


@dataclass(frozen=True)
class StageConfig:
    """One training stage: its data, groups, objective, optimiser and schedule.

    Each group is one query with its positive first and ``group_size - 1`` negatives drawn
    from ``negatives`` (weights per source among NEGATIVE_SOURCES, see NegativeMix) out of
    the top ``negative_depth`` candidates of each source. ``model`` negatives are mined at
    the start of the stage by the model being trained: it re-scores each query's BM25 top
    ``mine_depth`` and keeps its best non-relevant ones that the false-negative guard lets
    through (none scored above a judged positive). ``groups_per_step`` groups make one optimiser step (split
    over ``grad_accum`` micro-batches and over the data-parallel ranks). The stage runs
    ``epochs`` passes, cut at ``max_steps`` when given. ``eval_every`` = 0 evaluates only at
    the stage end; ``patience`` = 0 disables early stopping. ``clip`` = 0 disables clipping;
    ``llrd`` < 1 scales each lower layer's learning rate by that factor per layer.
    """

    name: str
    source: str
    group_size: int = 8
    negatives: Mapping[str, float] = field(default_factory=lambda: {"bm25": 1.0})
    negative_depth: int = 30
    mine_depth: int = 100
    max_groups: int | None = None
    groups_per_step: int = 8
    grad_accum: int = 1
    lr: float = 2e-5
    epochs: int = 1
    max_steps: int | None = None
    losses: tuple[LossConfig, ...] = (LossConfig("softmax_ce"),)
    warmup_ratio: float = 0.1
    schedule: str = "linear"
    weight_decay: float = 0.01
    llrd: float = 1.0
    clip: float = 1.0
    eval_every: int = 0
    patience: int = 0

    def __post_init__(self) -> None:
        where = f"stage {self.name!r}"
        if not self.name:
            raise ConfigError("every stage needs a non-empty name")
        choice(f"{where}: source", self.source, SOURCES)
        if self.group_size < 2:
            raise ConfigError(f"{where}: group_size must be >= 2, got {self.group_size}")
        self._check_negatives(where)
        for name in ("negative_depth", "mine_depth", "max_groups", "groups_per_step", "grad_accum"):
            positive(f"{where}: {name}", getattr(self, name))
        positive(f"{where}: lr", self.lr)
        positive(f"{where}: epochs", self.epochs)
        positive(f"{where}: max_steps", self.max_steps)
        if self.groups_per_step % self.grad_accum:
            raise ConfigError(
                f"{where}: groups_per_step ({self.groups_per_step}) must be divisible by "
                f"grad_accum ({self.grad_accum})"
            )
        if not self.losses:
            raise ConfigError(f"{where}: losses must name at least one loss")
        probability(f"{where}: warmup_ratio", self.warmup_ratio)
        choice(f"{where}: schedule", self.schedule, SCHEDULES)
        for name in ("weight_decay", "clip", "eval_every", "patience"):
            non_negative(f"{where}: {name}", getattr(self, name))
        if not 0.0 < self.llrd <= 1.0:
            raise ConfigError(f"{where}: llrd must be in (0, 1], got {self.llrd!r}")

    def _check_negatives(self, where: str) -> None:
        unknown = sorted(set(self.negatives) - set(NEGATIVE_SOURCES))
        if unknown:
            raise ConfigError(
                f"{where}: negatives has unsupported sources {unknown}; use {NEGATIVE_SOURCES}"
            )
        for source, weight in self.negatives.items():
            non_negative(f"{where}: negatives.{source}", weight)
        if not any(w > 0 for w in self.negatives.values()):
            raise ConfigError(f"{where}: negatives needs a source with weight > 0")
        object.__setattr__(self, "negatives", MappingProxyType(dict(self.negatives)))

    def __hash__(self) -> int:
        return hash((self.name, self.source, tuple(sorted(self.negatives.items()))))


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run: global settings plus the stages, in order.

    ``device`` is ``auto`` (CUDA when available), ``cpu`` or ``cuda``. ``deterministic``
    turns on torch's deterministic algorithms (bit-exact resume on CPU); ``threads`` sets
    torch's CPU thread count. ``time_limit_minutes`` stops training once that much wall-clock
    time has passed since this process started fitting (a resumed run gets a fresh budget):
    the current stage ends with a dev evaluation, later stages are skipped, and the final
    weights are chosen as usual; final.json then says ``time_limit_reached``.
    """

    stages: tuple[StageConfig, ...]
    schema_version: int = SCHEMA_VERSION
    seed: int = 42
    precision: str = "fp32"
    device: str = "auto"
    deterministic: bool = False
    threads: int | None = None
    time_limit_minutes: float | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError(
                f"schema_version {self.schema_version!r} is not supported "
                f"(this crossrank reads version {SCHEMA_VERSION})"
            )
        if not self.stages:
            raise ConfigError("a recipe needs at least one [[stages]] table")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage names must be unique, got {names}")
        if isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        choice("precision", self.precision, PRECISIONS)
        choice("device", self.device, ("auto", "cpu", "cuda"))
        positive("threads", self.threads)
        positive("time_limit_minutes", self.time_limit_minutes)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with top-level fields changed (nested sections: pass a new dataclass)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (None values left out, as TOML has no null)."""
        return to_plain(self)

    def to_toml(self) -> str:
        """The recipe as TOML text; :func:`parse_config` reads it back unchanged."""
        return dump_toml(self.to_dict())


def parse_config(text: str, *, source: str = "<string>") -> TrainConfig:
    """Parse and validate a TOML recipe; errors are ConfigError prefixed with ``source``."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: invalid TOML: {err}") from err
    try:
        return coerce_table(TrainConfig, table, "", _SPECIAL_FIELDS)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from err


def load_config(path: str | Path) -> TrainConfig:
    """Read a recipe file (see :func:`parse_config`)."""
    file = Path(path)
    if not file.is_file():
        raise MissingDataError(f"recipe {file} not found")
    return parse_config(file.read_text(encoding="utf-8"), source=str(file))


def _parse_losses(value: Any, where: str) -> tuple[LossConfig, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f'{where} must be a list of tables like {{ name = "softmax_ce" }}')
    try:
        return tuple(LossConfig.from_dict(v) for v in value)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err


# Fields whose TOML form needs more than type coercion.
_SPECIAL_FIELDS = MappingProxyType(
    {(StageConfig, "losses"): _parse_losses, (ModelConfig, "interaction"): parse_interaction}
)
