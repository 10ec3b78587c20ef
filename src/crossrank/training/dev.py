"""Dev evaluation during training: rerank a fixed first-stage top-k with the live weights.

The candidates (e.g. BM25 top-20 of every dev query) are fixed once, so successive
evaluations differ only by the model. Scoring runs the trainable module itself (``no_grad``,
eval mode, then back to the previous mode), batched by length, so any
:class:`~crossrank.training.trainable.TrainableModel` can be evaluated and no weights are
copied.

Example:
    >>> devset = DevSet.build(queries, docs, bm25_run, qrels, top_k=20)  # doctest: +SKIP
    >>> DevEvaluator(devset, EvalConfig(), torch.device("cpu"), "fp32")(model)  # doctest: +SKIP
    DevScores(metric='nDCG@10', model=0.61, interpolated=0.66, first_stage=0.59)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from crossrank.data.types import Qrels, Run
from crossrank.errors import ConfigError
from crossrank.evaluation import evaluate
from crossrank.retrieval.fusion import interpolate
from crossrank.training.config import EvalConfig
from crossrank.training.distributed import autocast

__all__ = ["DevEvaluator", "DevScores", "DevSet", "score_pairs"]


@dataclass(frozen=True)
class DevSet:
    """Flattened (query, candidate) pairs of the dev queries, their qrels and first stage."""

    qids: np.ndarray
    doc_ids: np.ndarray
    query_texts: np.ndarray
    doc_texts: np.ndarray
    qrels: Qrels
    first_stage: Run

    @classmethod
    def build(
        cls,
        queries: Mapping[str, str],
        docs: Mapping[str, str],
        run: Run,
        qrels: Qrels,
        *,
        top_k: int,
    ) -> DevSet:
        """Each judged query's ``top_k`` candidates of ``run`` (ties by doc id)."""
        first: Run = {}
        for qid in qrels:
            if qid not in queries:
                raise ConfigError(f"dev query {qid!r} has qrels but no text")
            ranked = sorted(run.get(qid, {}).items(), key=lambda item: (-item[1], item[0]))
            first[qid] = dict(ranked[:top_k])
        qids = [qid for qid, ranked in first.items() for _ in ranked]
        doc_ids = [doc_id for ranked in first.values() for doc_id in ranked]
        missing = sorted(set(doc_ids) - set(docs))
        if missing:
            raise ConfigError(f"dev candidates missing from the corpus: {missing[:5]}")
        return cls(
            qids=_objects(qids),
            doc_ids=_objects(doc_ids),
            query_texts=_objects([queries[q] for q in qids]),
            doc_texts=_objects([docs[d] for d in doc_ids]),
            qrels={qid: dict(qrels[qid]) for qid in qrels},
            first_stage=first,
        )

    def __len__(self) -> int:
        return len(self.qids)

    def to_run(self, scores: np.ndarray) -> Run:
        run: Run = {qid: {} for qid in self.first_stage}
        for qid, doc_id, score in zip(self.qids, self.doc_ids, scores.tolist(), strict=True):
            run[qid][doc_id] = score
        return run


def _objects(values: list[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@dataclass(frozen=True)
class DevScores:
    """Dev ``metric`` of the model alone, interpolated with the first stage, and first stage."""

    metric: str
    model: float
    interpolated: float
    first_stage: float

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def score_pairs(
    model: nn.Module,
    queries: np.ndarray,
    docs: np.ndarray,
    *,
    batch_size: int,
    device: torch.device,
    precision: str,
) -> np.ndarray:
    """Scores of aligned pairs in input order, computed longest first in ``batch_size`` rows."""
    scores = np.empty(len(queries), dtype=np.float32)
    if len(queries) == 0:
        return scores
    order = np.argsort(-model.pair_lengths(queries, docs), kind="stable")
    with torch.no_grad():
        for rows in np.array_split(order, -(-len(order) // batch_size)):
            batch = {k: v.to(device) for k, v in model.collate(queries[rows], docs[rows]).items()}
            with autocast(device, precision):
                logits = model(**batch)
            scores[rows] = logits.float().cpu().numpy()
    return scores


class DevEvaluator:
    """Scores a :class:`DevSet` with a model; call it with the (unwrapped) module."""

    def __init__(
        self, devset: DevSet, config: EvalConfig, device: torch.device, precision: str
    ) -> None:
        self.devset = devset
        self.config = config
        self.device = device
        self.precision = precision
        self._first_stage_value = self._metric(devset.first_stage)

    def __call__(self, model: nn.Module) -> DevScores:
        was_training = model.training
        model.eval()
        try:
            scores = score_pairs(
                model,
                self.devset.query_texts,
                self.devset.doc_texts,
                batch_size=self.config.batch_size,
                device=self.device,
                precision=self.precision,
            )
        finally:
            model.train(was_training)
        run = self.devset.to_run(scores)
        weight = self.config.interpolation_weight
        fused = interpolate([run, self.devset.first_stage], [weight, 1.0 - weight], "zscore")
        return DevScores(
            metric=self.config.metric,
            model=self._metric(run),
            interpolated=self._metric(fused),
            first_stage=self._first_stage_value,
        )

    def _metric(self, run: Run) -> float:
        return float(
            evaluate(run, self.devset.qrels, [self.config.metric]).means[self.config.metric]
        )
