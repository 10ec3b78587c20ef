"""Training groups (one query, its positive first, then negatives) and their batch order.

A :class:`GroupSet` stores groups column-wise: a query text per group, a table of unique
document texts, and ``members`` / ``labels`` matrices of shape ``(n_groups, group_size)``
(``-1`` marks a missing member when a query ran short of negatives). Builders make groups
from judged train queries or from synthetic queries (corpus titles, sentences), with
negatives from :func:`~crossrank.training.negatives.sample_negatives`.

:func:`epoch_batches` gives the length-bucketed batch order of an epoch as a pure function of
``(seed, stage, epoch)``, which is what makes exact resume possible.

Example:
    >>> groups = GroupSet.build(["q1", "q2"], [["d1", "d2"], ["d3", "d1"]], [[1, 0], [1, 0]])
    >>> groups.members.tolist()
    [[0, 1], [2, 0]]
    >>> q, d, rows, cols = groups.pairs(np.array([1]))
    >>> list(q), list(d), rows.tolist(), cols.tolist()
    (['q2', 'q2'], ['d3', 'd1'], [0, 0], [0, 1])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crossrank.data.types import Document, Qrels, Query, Run
from crossrank.errors import ConfigError, require_positive
from crossrank.training.augmentation import sentence_queries, title_queries
from crossrank.training.config import StageConfig
from crossrank.training.negatives import NegativeMix, sample_negatives

__all__ = [
    "GroupSet",
    "MineFn",
    "RetrieveFn",
    "StageQueries",
    "build_stage_groups",
    "epoch_batches",
    "split_micro_batches",
    "stage_queries",
]

# Batches are formed inside pools of this many batches: long enough to sort by length,
# short enough that every part of the shuffled data still mixes across the epoch.
POOL_BATCHES = 50


@dataclass(frozen=True)
class GroupSet:
    """Training groups stored column-wise (see the module docstring)."""

    queries: np.ndarray  # (n,) object: query text of each group
    texts: np.ndarray  # (t,) object: unique document texts
    members: np.ndarray  # (n, group_size) int64 index into texts, -1 = no member
    labels: np.ndarray  # (n, group_size) float32 relevance, 0 for negatives and gaps

    @classmethod
    def build(
        cls,
        queries: Sequence[str],
        docs: Sequence[Sequence[str]],
        labels: Sequence[Sequence[float]],
        group_size: int | None = None,
    ) -> GroupSet:
        """Groups from parallel lists; shorter groups are padded to ``group_size``."""
        if not (len(queries) == len(docs) == len(labels)):
            raise ConfigError("queries, docs and labels must have one entry per group")
        width = group_size or max((len(d) for d in docs), default=1)
        table: dict[str, int] = {}
        members = np.full((len(queries), width), -1, dtype=np.int64)
        grades = np.zeros((len(queries), width), dtype=np.float32)
        for i, (group, values) in enumerate(zip(docs, labels, strict=True)):
            if len(group) != len(values) or len(group) > width:
                raise ConfigError(f"group {i}: {len(group)} docs, {len(values)} labels")
            members[i, : len(group)] = [table.setdefault(text, len(table)) for text in group]
            grades[i, : len(group)] = values
        return cls(_objects(queries), _objects(list(table)), members, grades)

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def group_size(self) -> int:
        return int(self.members.shape[1])

    def pairs(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Query texts, doc texts, and (row, column) in the group matrix of every real pair."""
        members = self.members[groups]
        rows, cols = np.nonzero(members >= 0)
        return self.queries[groups][rows], self.texts[members[rows, cols]], rows, cols

    def mask(self, groups: np.ndarray) -> np.ndarray:
        return self.members[groups] >= 0

    def num_pairs(self) -> int:
        return int((self.members >= 0).sum())


def _objects(texts: Sequence[str]) -> np.ndarray:
    out = np.empty(len(texts), dtype=object)
    out[:] = list(texts)
    return out


RetrieveFn = Callable[[Mapping[str, str], int], Run]
Positive = tuple[str, str, str, float]  # (query id, positive doc id, positive text, grade)


class MineFn(Protocol):
    """Model-mined negatives: for each query of ``judged``, its best non-relevant candidates.

    ``queries`` maps query ids to texts, ``doc_text`` doc ids to the texts the stage trains
    on; ``depth`` is how many to keep per query, ``pool_depth`` how many first-stage
    candidates to re-score.
    """

    def __call__(
        self,
        queries: Mapping[str, str],
        judged: Qrels,
        doc_text: Mapping[str, str],
        depth: int,
        pool_depth: int,
    ) -> Run: ...


@dataclass(frozen=True)
class StageQueries:
    """A stage's queries before negatives: texts, judged documents, positives, doc texts.

    ``texts`` and ``judged`` cover the queries of ``positives`` (query id, positive doc id,
    positive text, grade); ``doc_text`` holds the text the stage trains on for every doc.
    """

    texts: dict[str, str]
    judged: Qrels
    positives: list[Positive]
    doc_text: dict[str, str]


def stage_queries(
    stage: StageConfig,
    *,
    corpus: Mapping[str, Document],
    queries: Mapping[str, Query],
    qrels: Qrels,
    seed: int,
) -> StageQueries:
    """The queries and positives of one stage (see :func:`build_stage_groups`)."""
    rng = np.random.default_rng([seed, 1])
    texts, positives, doc_text = _positives(stage.source, corpus, queries, qrels, rng)
    positives = _cap(positives, stage.max_groups, rng)
    if stage.source == "train_qrels":
        judged = {qid: qrels[qid] for qid in sorted({p[0] for p in positives})}
    else:
        judged = {qid: {doc_id: 1} for qid, doc_id, _, _ in positives}
    return StageQueries({qid: texts[qid] for qid in judged}, judged, positives, doc_text)


def build_stage_groups(
    stage: StageConfig,
    *,
    corpus: Mapping[str, Document],
    queries: Mapping[str, Query],
    qrels: Qrels,
    retrieve: RetrieveFn,
    seed: int,
    dense: RetrieveFn | None = None,
    mine: MineFn | None = None,
) -> GroupSet:
    """The groups of one stage, a pure function of the data, the stage config and ``seed``
    (and, for ``model`` negatives, of the model ``mine`` scores with).

    ``train_qrels``: one group per (query, judged-relevant document) of ``qrels``, texts are
    title + abstract. ``synthetic_*``: one group per usable corpus document, texts are
    abstracts only (a title copied into negatives only would be a shortcut). ``retrieve(texts,
    depth)`` returns BM25 candidates, ``dense`` dense ones, ``mine`` model-mined ones; each is
    called only when the stage gives its source a weight (and must then be given).
    """
    sq = stage_queries(stage, corpus=corpus, queries=queries, qrels=qrels, seed=seed)
    runs = _candidate_runs(stage, sq, retrieve, dense, mine)
    sample = sample_negatives(
        sq.judged,
        stage.group_size - 1,
        NegativeMix(**stage.negatives),
        runs=runs,
        corpus_ids=sorted(corpus) if stage.negatives.get("random", 0.0) > 0 else (),
        depth=stage.negative_depth,
        seed=seed,
    )
    doc_text, negatives = sq.doc_text, sample.negatives
    return GroupSet.build(
        [sq.texts[qid] for qid, _, _, _ in sq.positives],
        [[text, *(doc_text[n] for n in negatives[qid])] for qid, _, text, _ in sq.positives],
        [[grade] + [0.0] * len(negatives[qid]) for qid, _, _, grade in sq.positives],
        stage.group_size,
    )


def _positives(
    source: str,
    corpus: Mapping[str, Document],
    queries: Mapping[str, Query],
    qrels: Qrels,
    rng: np.random.Generator,
) -> tuple[dict[str, str], list[Positive], dict[str, str]]:
    """Query texts by id, (query, positive) entries, and the text used for each document."""
    if source == "train_qrels":
        texts = {qid: queries[qid].text for qid in sorted(qrels) if qid in queries}
        doc_text = {doc_id: doc.full_text for doc_id, doc in corpus.items()}
        return texts, _judged_positives(qrels, corpus, texts), doc_text
    docs = sorted(corpus.values(), key=lambda d: d.doc_id)
    pairs = title_queries(docs) if source == "synthetic_title" else sentence_queries(docs, rng)
    texts = {f"{p.kind}:{p.doc_id}": p.query for p in pairs}
    positives = [(f"{p.kind}:{p.doc_id}", p.doc_id, p.positive, 1.0) for p in pairs]
    return texts, positives, {doc_id: doc.text for doc_id, doc in corpus.items()}


def _judged_positives(
    qrels: Qrels, corpus: Mapping[str, Document], texts: Mapping[str, str]
) -> list[Positive]:
    """One entry per (query, judged-relevant document in the corpus)."""
    return [
        (qid, doc_id, corpus[doc_id].full_text, float(grade))
        for qid in texts
        for doc_id, grade in sorted(qrels[qid].items())
        if grade > 0 and doc_id in corpus
    ]


def _cap(positives: list[Positive], limit: int | None, rng: np.random.Generator) -> list[Positive]:
    """A seeded random subset of ``limit`` entries, kept in their original order."""
    if limit is None or limit >= len(positives):
        return positives
    keep = np.sort(rng.choice(len(positives), size=limit, replace=False))
    return [positives[i] for i in keep.tolist()]


def _candidate_runs(
    stage: StageConfig,
    sq: StageQueries,
    retrieve: RetrieveFn,
    dense: RetrieveFn | None,
    mine: MineFn | None,
) -> dict[str, Run]:
    """The candidate run of every hard-negative source the stage gives a weight."""
    wanted = [s for s in ("bm25", "dense", "model") if stage.negatives.get(s, 0.0) > 0]
    given = {"bm25": retrieve, "dense": dense, "model": mine}
    missing = [source for source in wanted if given[source] is None]
    if missing:
        raise ConfigError(
            f"stage {stage.name!r} asks for {missing} negatives but no retriever/miner was given"
        )
    depth = stage.negative_depth
    runs: dict[str, Run] = {}
    if "bm25" in wanted:
        runs["bm25"] = retrieve(sq.texts, depth)
    if dense is not None and "dense" in wanted:
        runs["dense"] = dense(sq.texts, depth)
    if mine is not None and "model" in wanted:
        runs["model"] = mine(sq.texts, sq.judged, sq.doc_text, depth, stage.mine_depth)
    return runs


def epoch_batches(
    lengths: np.ndarray, batch_size: int, *, seed: int, stage: int, epoch: int
) -> list[np.ndarray]:
    """Length-bucketed batches of group indices for one epoch (a pure function of its args).

    Groups are shuffled, cut into pools of ``POOL_BATCHES`` batches, sorted by length inside
    each pool and cut into batches, and the batches are shuffled. The last incomplete batch
    is dropped, so every batch has exactly ``batch_size`` groups.

    >>> [b.tolist() for b in epoch_batches(np.array([5, 1, 4, 2]), 2, seed=0, stage=0, epoch=0)]
    [[3, 1], [0, 2]]
    """
    require_positive("batch_size", batch_size)
    rng = np.random.default_rng([seed, stage, epoch])
    order = rng.permutation(len(lengths))
    pool = POOL_BATCHES * batch_size
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        full = len(chunk) // batch_size * batch_size
        batches.extend(np.split(chunk[:full], full // batch_size) if full else [])
    return [batches[i] for i in rng.permutation(len(batches)).tolist()]


def split_micro_batches(
    batch: np.ndarray, *, world_size: int, rank: int, grad_accum: int
) -> list[np.ndarray]:
    """This rank's ``grad_accum`` micro-batches of a global batch (contiguous slices).

    >>> [m.tolist() for m in split_micro_batches(np.arange(8), world_size=2, rank=1, grad_accum=2)]
    [[4, 5], [6, 7]]
    """
    parts = world_size * grad_accum
    if len(batch) % parts:
        raise ConfigError(
            f"a batch of {len(batch)} groups cannot be split over {world_size} rank(s) x "
            f"{grad_accum} accumulation step(s); make groups_per_step divisible by {parts}"
        )
    chunks = np.split(batch, parts)
    return chunks[rank * grad_accum : (rank + 1) * grad_accum]
