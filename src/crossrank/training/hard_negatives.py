"""Model-mined negatives for ``crossrank train``: the current model re-scores a BM25 pool.

At the start of a stage whose ``negatives`` give ``model`` a weight, the model being trained
scores each query's BM25 top ``mine_depth`` candidates (``batch_size`` pairs at a time into a
bounded per-query top-k, never a full score matrix), keeps its ``negative_depth`` best
non-relevant ones and drops those the false-negative guard flags (scored above a judged
positive of the query: likely unjudged relevant documents). The mined run is saved so that a
run resumed mid-stage trains on the same negatives.

Example:
    >>> miner = ModelMiner(model, bm25.retrieve, device=torch.device("cpu"),  # doctest: +SKIP
    ...                    precision="fp32", batch_size=64)
    >>> run = miner({"q1": "aspirin fever"}, {"q1": {"d1": 1}}, doc_text, 30, 100)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from crossrank.data.atomic import atomic_write
from crossrank.data.types import Collection, Qrels, Run
from crossrank.errors import DataFormatError
from crossrank.training.config import TrainConfig
from crossrank.training.data import MineFn, RetrieveFn, stage_queries
from crossrank.training.dev import score_pairs
from crossrank.training.distributed import DistContext
from crossrank.training.negatives import drop_false_negatives, mine_candidates, score_run
from crossrank.training.negatives.mining import relevant_ids
from crossrank.training.outputs import CHECKPOINT_DIR
from crossrank.training.planning import plan_stage, replay_mined
from crossrank.training.state import StagePlan
from crossrank.training.trainable import TrainableModel

__all__ = [
    "MINED_DIR",
    "MinedStageStart",
    "ModelMiner",
    "ModelScorer",
    "read_mined",
    "write_mined",
]

# Mined runs live under the run's checkpoints/ folder: only a resumed run needs them.
MINED_DIR = "mined"

# Pairs handed to the scorer per call: large, so score_pairs can sort them by length and
# pad little; it still runs them ``batch_size`` at a time.
_PAIRS_PER_CALL = 16


class ModelScorer:
    """A :class:`~crossrank.protocols.Scorer` over a trainable model (eval mode, no grad)."""

    def __init__(
        self, model: TrainableModel, *, device: torch.device, precision: str, batch_size: int
    ) -> None:
        self.model = model
        self.device = device
        self.precision = precision
        self.batch_size = batch_size

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        return score_pairs(
            self.model,
            _objects(queries),
            _objects(docs),
            batch_size=self.batch_size,
            device=self.device,
            precision=self.precision,
        ).astype(np.float64)


def _objects(texts: Sequence[str]) -> np.ndarray:
    out = np.empty(len(texts), dtype=object)
    out[:] = list(texts)
    return out


class ModelMiner:
    """Mines model negatives (a :class:`~crossrank.training.data.MineFn`), see the module doc."""

    def __init__(
        self,
        model: TrainableModel,
        retrieve: RetrieveFn,
        *,
        device: torch.device,
        precision: str,
        batch_size: int,
        margin: float = 0.0,
    ) -> None:
        self.model = model
        self.retrieve = retrieve
        self.scorer = ModelScorer(model, device=device, precision=precision, batch_size=batch_size)
        self.margin = margin

    def __call__(
        self,
        queries: Mapping[str, str],
        judged: Qrels,
        doc_text: Mapping[str, str],
        depth: int,
        pool_depth: int,
    ) -> Run:
        pool = self.retrieve(queries, pool_depth)
        positives = {
            qid: {d: 0.0 for d in sorted(relevant_ids(judged, qid)) if d in doc_text}
            for qid in pool
        }
        per_call = _PAIRS_PER_CALL * self.scorer.batch_size
        was_training = self.model.training
        self.model.eval()  # no dropout: the model's own ranking, and no RNG draws
        try:
            mined = mine_candidates(
                queries, pool, doc_text, self.scorer, depth, qrels=judged, batch_size=per_call
            )
            guard = score_run(queries, positives, doc_text, self.scorer, batch_size=per_call)
        finally:
            self.model.train(was_training)
        scores = {qid: {**mined[qid], **guard[qid]} for qid in mined}
        return drop_false_negatives(mined, scores, judged, margin=self.margin).kept


def write_mined(path: Path, run: Run) -> None:
    """Save a mined run (JSON, atomically) so a resumed stage reuses it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        json.dump(run, fh)


def read_mined(path: Path) -> Run:
    """Read a run saved by :func:`write_mined`."""
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataFormatError(path, None, f"cannot read mined negatives: {err}") from err
    if not isinstance(run, dict) or not all(isinstance(v, dict) for v in run.values()):
        raise DataFormatError(path, None, "mined negatives must map query ids to {doc: score}")
    return {str(q): {str(d): float(s) for d, s in docs.items()} for q, docs in run.items()}


class MinedStageStart:
    """The trainer's ``stage_start``: re-plans each stage that asks for ``model`` negatives
    with candidates mined by the model as it is at the stage start.

    Rank 0 mines and saves the run under ``out_dir/checkpoints/mined/`` (a stage resumed
    mid-way reads it back: the model that mined it is gone); every rank then plans from
    the same run, so the ranks' groups agree.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: TrainableModel,
        collection: Collection,
        *,
        retrieve: RetrieveFn,
        dense: RetrieveFn | None,
        miner: MineFn,
        ctx: DistContext,
        out_dir: Path,
    ) -> None:
        self.config = config
        self.model = model
        self.collection = collection
        self.retrieve = retrieve
        self.dense = dense
        self.miner = miner
        self.ctx = ctx
        self.out_dir = out_dir

    def __call__(self, index: int, plan: StagePlan, resumed: bool) -> StagePlan:
        if plan.config.negatives.get("model", 0.0) <= 0:
            return plan
        path = self.out_dir / CHECKPOINT_DIR / MINED_DIR / f"stage-{index}.json"
        if resumed:
            run = read_mined(path)
        else:
            run = self.ctx.gather(self._mine(index) if self.ctx.is_main else None)[0]
            if self.ctx.is_main:
                write_mined(path, run)
        return plan_stage(
            self.config,
            index,
            self.model,
            self.collection,
            self.retrieve,
            dense=self.dense,
            mine=replay_mined(run),
        )

    def _mine(self, index: int) -> Run:
        stage = self.config.stages[index]
        sq = stage_queries(
            stage,
            corpus=self.collection.corpus,
            queries=self.collection.queries,
            qrels=self.collection.qrels,
            seed=self.config.seed + index,
        )
        return self.miner(sq.texts, sq.judged, sq.doc_text, stage.negative_depth, stage.mine_depth)
