"""A cross-encoder checkpoint: HF sequence-classification module + fast tokenizer + heads.

:class:`CrossEncoderModel` is the torch-side object that training and inference share. It
loads any BERT/RoBERTa/DeBERTa/ELECTRA-family sequence-classification checkpoint, or a plain
encoder with a fresh (seeded) head, and saves in the plain Hugging Face layout (config.json +
model.safetensors + tokenizer files), so the same directory loads in transformers and
sentence-transformers without conversion. Scoring lives in :mod:`crossrank.inference`.

Example:
    >>> model = CrossEncoderModel.from_pretrained("path/to/encoder",  # doctest: +SKIP
    ...                                           heads=[HeadSpec.graded(4)])
    >>> model.save_pretrained("out/my-reranker")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from crossrank.errors import ConfigError, ModelLoadError
from crossrank.models.heads import HeadLayout, HeadSpec
from crossrank.models.loading import (
    checkpoint_keys,
    find_weight_files,
    has_head_weights,
    load_classifier,
    load_config,
    load_tokenizer,
    resolve_model_dir,
)

# Position tables of RoBERTa-style models start at padding_idx + 1, so they hold 2 fewer tokens.
_OFFSET_POSITION_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer"}

logger = logging.getLogger(__name__)


class CrossEncoderModel:
    """A loaded cross-encoder: ``module`` (torch), ``tokenizer`` (fast) and ``heads``."""

    def __init__(
        self,
        module: PreTrainedModel,
        tokenizer: Any,
        heads: HeadLayout,
        source: Path,
        *,
        fresh_head: bool = False,
    ) -> None:
        if module.config.num_labels != heads.num_labels:
            raise ConfigError(
                f"module has {module.config.num_labels} outputs, heads need {heads.num_labels}"
            )
        self.module = module
        self.tokenizer = tokenizer
        self.heads = heads
        self.source = source
        # True when the checkpoint had no head and this one was initialised here.
        self.fresh_head = fresh_head

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        heads: Sequence[HeadSpec] | HeadLayout | None = None,
        trust_remote_code: bool = False,
        seed: int = 0,
        revision: str | None = None,
    ) -> CrossEncoderModel:
        """Load a checkpoint directory or hub id (safetensors only).

        ``heads`` chooses the output heads; ``None`` reads them from ``config.json`` (or takes
        one binary head for 1-output and plain-encoder checkpoints). A plain encoder gets a
        fresh head initialised from ``seed``.

        >>> CrossEncoderModel.from_pretrained("/no/such/dir")  # doctest: +SKIP
        Traceback (most recent call last):
        crossrank.errors.ModelLoadError: model directory /no/such/dir does not exist
        """
        model_dir = resolve_model_dir(name_or_path, revision)
        weight_files = find_weight_files(model_dir)
        fresh = not has_head_weights(checkpoint_keys(weight_files))
        if fresh:
            # Loud on purpose: an untrained head ranks at random, which must never look fine.
            logger.warning(
                "%s has no classification head: initialised a fresh one from seed %d; "
                "its scores are meaningless until the model is trained",
                model_dir,
                seed,
            )
        config = load_config(model_dir, trust_remote_code)
        layout = _choose_heads(config, heads, fresh, model_dir)
        _apply_heads_to_config(config, layout)
        module = load_classifier(
            model_dir,
            config,
            layout.num_labels,
            fresh_head=fresh,
            seed=seed,
            trust_remote_code=trust_remote_code,
        )
        tokenizer = load_tokenizer(model_dir, trust_remote_code)
        return cls(module, tokenizer, layout, model_dir, fresh_head=fresh)

    @property
    def config(self) -> PretrainedConfig:
        return self.module.config

    @property
    def max_positions(self) -> int:
        """Longest input (in tokens, special tokens included) the position table allows."""
        positions = int(getattr(self.config, "max_position_embeddings", 512))
        if self.config.model_type in _OFFSET_POSITION_MODELS:
            positions -= 2
        return positions

    def forward_logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The plain transformers forward: logits ``[batch, num_labels]``."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.module(**kwargs).logits

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config.json + model.safetensors + tokenizer files; each file lands atomically.

        The directory loads unchanged with transformers' ``AutoModelForSequenceClassification``
        and sentence-transformers' ``CrossEncoder``.
        """
        _apply_heads_to_config(self.config, self.heads)
        return save_hf_directory(directory, self.module, self.tokenizer)


def save_hf_directory(directory: str | Path, module: PreTrainedModel, tokenizer: Any) -> Path:
    """Save module (safetensors) and tokenizer into ``directory``, each file renamed into place."""
    target = Path(directory).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".crossrank-save-") as tmp:
        module.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for file in sorted(Path(tmp).iterdir()):
            if file.is_file():
                os.replace(file, target / file.name)
    return target


def _choose_heads(
    config: PretrainedConfig,
    heads: Sequence[HeadSpec] | HeadLayout | None,
    fresh: bool,
    model_dir: Path,
) -> HeadLayout:
    stored = getattr(config, "crossrank", None)
    stored_layout = (
        HeadLayout.from_config(stored, str(model_dir / "config.json"))
        if isinstance(stored, dict)
        else None
    )
    if heads is not None:
        layout = heads if isinstance(heads, HeadLayout) else HeadLayout.of(heads)
        if not fresh and layout.num_labels != _stored_width(config, stored_layout):
            raise ModelLoadError(
                f"{model_dir}: head size mismatch: the requested heads need {layout.num_labels} "
                f"outputs, the checkpoint has {_stored_width(config, stored_layout)}"
            )
        return layout
    if stored_layout is not None:
        return stored_layout
    if fresh or config.num_labels == 1:
        return HeadLayout.single(HeadSpec.binary())
    raise ModelLoadError(
        f"{model_dir}: the checkpoint has {config.num_labels} outputs and no crossrank head "
        "section; pass heads=..., e.g. [HeadSpec.graded(k)]"
    )


def _stored_width(config: PretrainedConfig, stored: HeadLayout | None) -> int:
    return stored.num_labels if stored is not None else int(config.num_labels)


def _apply_heads_to_config(config: PretrainedConfig, layout: HeadLayout) -> None:
    """Record the head layout where HF and sentence-transformers read the output width."""
    config.num_labels = layout.num_labels
    config.id2label = layout.id2label()
    config.label2id = {label: i for i, label in config.id2label.items()}
    config.crossrank = layout.to_config()
