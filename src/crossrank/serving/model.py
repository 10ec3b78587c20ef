"""The served model: a :class:`~crossrank.CrossEncoder` and how its scores are reported.

Scores are calibrated probabilities by default: ``calibrator.apply(logit)`` when the model
directory holds ``calibration.json`` (see :mod:`crossrank.evaluation.calibration`), else
``sigmoid(logit)`` computed exactly as ``predict(..., activation="sigmoid")`` does. Raw
logits on request. Graded and regression heads have no logit to calibrate: their score
(expected grade, regression value) is returned either way. With passage windows the
calibration applies to the aggregated per-document logit.

Example:
    >>> encoder = CrossEncoder.from_pretrained("path/to/model", max_length=256)  # doctest: +SKIP
    >>> served = ServedModel.load("path/to/model", encoder)  # doctest: +SKIP
    >>> logits = served.logits([("what is bm25", "BM25 is ...")], None)  # doctest: +SKIP
    >>> served.present(logits, raw=False), served.score_kind(raw=False)  # doctest: +SKIP
    (array([0.93], dtype=float32), 'sigmoid')
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossrank.errors import ConfigError
from crossrank.evaluation.calibration import Calibrator, load_calibrator
from crossrank.inference.cross_encoder import CrossEncoder
from crossrank.inference.passages import PassageConfig
from crossrank.models.registry import shipped_model_dir

logger = logging.getLogger(__name__)


class ServedModel:
    """What the server scores with; ``logits`` must be called from one thread at a time."""

    def __init__(
        self, encoder: CrossEncoder, *, name: str, calibrator: Calibrator | None = None
    ) -> None:
        self.encoder = encoder
        self.name = name
        self._head = encoder.heads.head(encoder.heads.primary)
        if calibrator is not None and self._head.kind != "binary":
            raise ConfigError(
                f"calibration.json needs a binary primary head; {self._head.name!r} is "
                f"{self._head.kind}"
            )
        self.calibrator = calibrator

    @classmethod
    def load(cls, name_or_path: str | Path, encoder: CrossEncoder) -> ServedModel:
        """Serve ``encoder`` (loaded from ``name_or_path``) with the ``calibration.json`` of
        its directory, if there is one."""
        # A shipped model's name (crossrank/minilm-scifact) stands for its folder in the package.
        path = shipped_model_dir(str(name_or_path)) or Path(name_or_path)
        calibrator = load_calibrator(path) if path.is_dir() else None
        logger.info(
            "serving %s (backend %s, max_length %d, scores: %s)",
            name_or_path,
            encoder.backend,
            encoder.max_length,
            "calibrated" if calibrator else "sigmoid",
        )
        return cls(encoder, name=str(name_or_path), calibrator=calibrator)

    @property
    def tokenizer(self) -> object:
        return self.encoder.model.tokenizer

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    def matches(self, requested: str) -> bool:
        """True if a request's ``model`` names this model (full name or last path part)."""
        return requested in (self.name, Path(self.name).name)

    def logits(
        self, pairs: Sequence[tuple[str, str]], passages: PassageConfig | None
    ) -> np.ndarray:
        """Primary-head scores without activation (logits of a binary head), in order."""
        return self.encoder.predict(pairs, passages=passages, activation="none")

    def present(self, logits: np.ndarray, *, raw: bool) -> np.ndarray:
        """Reported scores of ``logits``: calibrated/sigmoid probabilities, or raw."""
        if raw or self._head.kind != "binary":
            return logits
        if self.calibrator is not None:
            return self.calibrator.apply(logits)
        # HeadSpec.score is the very code predict(activation="sigmoid") runs: same bits.
        return self._head.score(logits.reshape(-1, 1), "sigmoid")

    def score_kind(self, *, raw: bool) -> str:
        """``calibrated-temperature``/``calibrated-platt``, ``sigmoid``, ``raw`` or a head kind."""
        if self._head.kind != "binary":
            return self._head.kind
        if raw:
            return "raw"
        return f"calibrated-{self.calibrator.kind}" if self.calibrator else "sigmoid"
