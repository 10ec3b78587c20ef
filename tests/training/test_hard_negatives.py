"""Dense and model-mined negatives in recipes: config, group building, the miner and its
guard on a tiny model, and a tiny run whose last stage mixes bm25, dense and model negatives
(including an exact resume in the middle of that stage)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank.data.beir import load_collection
from crossrank.data.types import Collection, Qrels, Run
from crossrank.errors import ConfigError
from crossrank.models.tiny import build_tiny_checkpoint
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.training.config import NEGATIVE_SOURCES, ModelConfig, StageConfig, TrainConfig
from crossrank.training.data import build_stage_groups, stage_queries
from crossrank.training.hard_negatives import ModelMiner, ModelScorer, read_mined, write_mined
from crossrank.training.pipeline import build_cross_encoder, train
from crossrank.training.trainer import StageEvent


def test_recipes_accept_every_negative_source() -> None:
    assert set(NEGATIVE_SOURCES) == {"bm25", "dense", "model", "random"}
    stage = StageConfig("s", "train_qrels", negatives={"bm25": 0.5, "dense": 0.25, "model": 0.25})
    assert dict(stage.negatives) == {"bm25": 0.5, "dense": 0.25, "model": 0.25}
    assert stage.mine_depth == 100
    with pytest.raises(ConfigError, match="mine_depth"):
        StageConfig("s", "train_qrels", mine_depth=0)
    with pytest.raises(ConfigError, match="unsupported sources"):
        StageConfig("s", "train_qrels", negatives={"colbert": 1.0})


@pytest.fixture(scope="module")
def collection(tiny_data: Path) -> Collection:
    return load_collection(tiny_data, "train")


def _fixed(prefix: str, calls: list[tuple[str, int]]) -> Callable[..., Run]:
    """A retriever returning the same candidates (doc ids starting with ``prefix``) per query."""

    def retrieve(queries: dict[str, str], depth: int) -> Run:
        calls.append((prefix, depth))
        return {q: {f"d{prefix}{i}": float(-i) for i in range(depth)} for q in queries}

    return retrieve


def test_groups_mix_dense_and_model_candidates(collection: Collection) -> None:
    calls: list[tuple[str, int]] = []

    def mine(queries: dict[str, str], judged: Qrels, doc_text: dict[str, str], depth: int,
             pool_depth: int) -> Run:  # fmt: skip
        calls.append(("mine", pool_depth))
        assert set(queries) == set(judged) and all(t for t in queries.values())
        assert doc_text["d0"] == collection.corpus["d0"].full_text  # train_qrels texts
        return {q: {f"d{40 + i}": 1.0 for i in range(depth)} for q in queries}

    stage = StageConfig("s", "train_qrels", group_size=3, negative_depth=4, mine_depth=9,
                        negatives={"dense": 0.5, "model": 0.5})  # fmt: skip
    bm25 = _fixed("x", calls)  # weight 0: must not be called
    groups = build_stage_groups(stage, corpus=collection.corpus, queries=collection.queries,
                                qrels=collection.qrels, retrieve=bm25, seed=0,
                                dense=_fixed("1", calls), mine=mine)  # fmt: skip
    assert sorted(calls) == [("1", 4), ("mine", 9)]
    texts = {doc.full_text: doc_id for doc_id, doc in collection.corpus.items()}
    for row in range(len(groups)):
        dense_doc, mined_doc = (texts[groups.texts[m]] for m in groups.members[row, 1:])
        assert dense_doc in {"d10", "d11", "d12", "d13"}  # dense top 4
        assert mined_doc in {"d40", "d41", "d42", "d43"}
    with pytest.raises(ConfigError, match=r"asks for \['model'\]"):
        build_stage_groups(stage, corpus=collection.corpus, queries=collection.queries,
                           qrels=collection.qrels, retrieve=bm25, seed=0,
                           dense=_fixed("1", calls))  # fmt: skip


@pytest.fixture(scope="module")
def tiny_model(tiny_backbone: Path) -> torch.nn.Module:
    config = ModelConfig(backbone=str(tiny_backbone), max_length=48, max_query_length=16)
    return build_cross_encoder(config, seed=0)


def test_model_miner_keeps_the_models_best_guarded_non_relevant_candidates(
    collection: Collection, tiny_model: torch.nn.Module
) -> None:
    stage = StageConfig("s", "train_qrels", group_size=4, negative_depth=5, mine_depth=20)
    sq = stage_queries(stage, corpus=collection.corpus, queries=collection.queries,
                       qrels=collection.qrels, seed=0)  # fmt: skip
    bm25 = BM25Retriever.build(collection.corpus)
    device = torch.device("cpu")
    miner = ModelMiner(tiny_model, bm25.retrieve, device=device, precision="fp32", batch_size=7)
    tiny_model.train()
    mined = miner(sq.texts, sq.judged, sq.doc_text, 5, 20)
    assert tiny_model.training  # restored after mining in eval mode
    assert set(mined) == set(sq.judged)

    scorer = ModelScorer(tiny_model, device=device, precision="fp32", batch_size=64)
    pool = bm25.retrieve(sq.texts, 20)
    tiny_model.eval()
    dropped = 0
    for qid, docs in mined.items():
        relevant = {d for d, g in sq.judged[qid].items() if g > 0}
        candidates = [d for d in pool[qid] if d not in relevant]
        # Brute force: every candidate of the pool scored at once.
        scores = scorer.score(
            [sq.texts[qid]] * len(candidates), [sq.doc_text[d] for d in candidates]
        )
        (positive,) = scorer.score([sq.texts[qid]] * len(relevant),
                                   [sq.doc_text[d] for d in relevant])  # fmt: skip
        top = [candidates[i] for i in np.argsort(-scores, kind="stable")[:5]]
        guarded = [d for d in top if scores[candidates.index(d)] <= positive]
        assert list(docs) == guarded, qid
        assert np.allclose([docs[d] for d in docs], [scores[candidates.index(d)] for d in docs],
                           atol=1e-5)  # fmt: skip
        dropped += len(top) - len(guarded)
    tiny_model.train()
    # The untrained model ranks some candidates above the positive: the guard did act.
    assert dropped > 0


def test_mined_runs_round_trip(tmp_path: Path) -> None:
    run = {"q1": {"d2": 1.5, "d1": -0.25}, "q2": {}}
    write_mined(tmp_path / "mined" / "stage-1.json", run)
    assert read_mined(tmp_path / "mined" / "stage-1.json") == run
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="mined negatives"):
        read_mined(tmp_path / "bad.json")


MIXED = "negatives = { bm25 = 0.5, dense = 0.25, model = 0.25 }\nmine_depth = 20\n"


@pytest.fixture
def mixed_config(
    tiny_config: Callable[..., TrainConfig], tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> TrainConfig:  # fmt: skip
    """The tiny recipe, its last stage with bm25 + dense + model negatives."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    encoder = build_tiny_checkpoint(tmp_path_factory.mktemp("dense") / "enc", plain_encoder=True)
    config = tiny_config(checkpoint_every=3, final_weights="last")
    last = config.stages[1]
    stage = type(last)(**{**{f: getattr(last, f) for f in last.__dataclass_fields__},
                          "negatives": {"bm25": 0.5, "dense": 0.25, "model": 0.25},
                          "mine_depth": 20})  # fmt: skip
    data = type(config.data)(path=config.data.path, dense_model=str(encoder))
    return config.replace(stages=(config.stages[0], stage), data=data)


def test_training_with_model_negatives_resumes_exactly(
    tmp_path: Path, mixed_config: TrainConfig
) -> None:
    full = train(mixed_config, out_dir=tmp_path / "full", quiet=True)
    assert full.state.global_step == 22

    class StopError(Exception):
        pass

    def stop_at_step_9(event: StageEvent) -> None:
        if event.global_step == 9:  # after the step-9 checkpoint, mid-way through stage 2
            raise StopError

    out = tmp_path / "stopped"
    with pytest.raises(StopError):
        train(mixed_config, out_dir=out, quiet=True, callbacks=[stop_at_step_9])
    mined = read_mined(out / "checkpoints" / "mined" / "stage-1.json")
    assert len(mined) == 32 and sum(map(len, mined.values())) > 0
    resumed = train(mixed_config, out_dir=out, resume=True, quiet=True)

    expected, got = full.model.state_dict(), resumed.model.state_dict()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, different
