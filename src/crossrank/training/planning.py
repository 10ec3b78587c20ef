"""Stage plans: each stage's groups (with their negatives) and group lengths for bucketing.

Example:
    >>> plans = plan_stages(config, model, collection, bm25.retrieve)  # doctest: +SKIP
    >>> plans[0].total_steps  # doctest: +SKIP
    163
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from crossrank.data.types import Collection, Qrels, Run
from crossrank.errors import ConfigError
from crossrank.training.config import StageConfig, TrainConfig
from crossrank.training.data import GroupSet, MineFn, RetrieveFn, build_stage_groups
from crossrank.training.state import StagePlan
from crossrank.training.trainable import TrainableModel

__all__ = ["make_plan", "plan_stage", "plan_stages", "replay_mined"]

logger = logging.getLogger(__name__)


def plan_stages(
    config: TrainConfig,
    model: TrainableModel,
    collection: Collection,
    retrieve: RetrieveFn,
    *,
    dense: RetrieveFn | None = None,
    mine: MineFn | None = None,
) -> list[StagePlan]:
    """Groups and group lengths of every stage (stage ``i`` samples with ``seed + i``).

    ``retrieve`` gives BM25 candidates, ``dense`` dense ones and ``mine`` model-mined ones,
    for the stages whose ``negatives`` ask for them.
    """
    return [
        plan_stage(config, index, model, collection, retrieve, dense=dense, mine=mine)
        for index in range(len(config.stages))
    ]


def plan_stage(
    config: TrainConfig,
    index: int,
    model: TrainableModel,
    collection: Collection,
    retrieve: RetrieveFn,
    *,
    dense: RetrieveFn | None = None,
    mine: MineFn | None = None,
) -> StagePlan:
    """The plan of stage ``index`` (see :func:`plan_stages`)."""
    stage = config.stages[index]
    groups = build_stage_groups(
        stage,
        corpus=collection.corpus,
        queries=collection.queries,
        qrels=collection.qrels,
        retrieve=retrieve,
        seed=config.seed + index,
        dense=dense,
        mine=mine,
    )
    return make_plan(stage, groups, model)


def make_plan(stage: StageConfig, groups: GroupSet, model: TrainableModel) -> StagePlan:
    """A stage's plan: its groups and each group's longest pair (tokens) for bucketing."""
    if len(groups) == 0:
        raise ConfigError(f"stage {stage.name!r} ({stage.source}) produced no groups")
    queries, docs, rows, _ = groups.pairs(np.arange(len(groups)))
    lengths = np.zeros(len(groups), dtype=np.int64)
    np.maximum.at(lengths, rows, model.pair_lengths(queries, docs))
    logger.info(
        "stage %s: %d groups of <= %d (%d pairs)",
        stage.name,
        len(groups),
        groups.group_size,
        groups.num_pairs(),
    )
    return StagePlan(stage, groups, lengths)


def replay_mined(source: RetrieveFn | Run) -> MineFn:
    """A MineFn that returns a fixed run (mined earlier), or ``source``'s candidate pool.

    >>> mine = replay_mined({"q": {"d2": 1.5}})
    >>> mine({"q": "text", "r": "other"}, {}, {}, 30, 100)
    {'q': {'d2': 1.5}, 'r': {}}
    """

    def mine(
        queries: Mapping[str, str],
        judged: Qrels,
        doc_text: Mapping[str, str],
        depth: int,
        pool_depth: int,
    ) -> Run:
        del judged, doc_text, depth  # the sampler skips relevant docs and cuts at its depth
        if isinstance(source, Mapping):
            return {qid: dict(source.get(qid, {})) for qid in queries}
        return source(queries, pool_depth)

    return mine
