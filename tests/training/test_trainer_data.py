"""Training groups, length-bucketed batch order, LR schedule and LLRD, the model adapter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank import CrossEncoder
from crossrank.data.beir import load_collection
from crossrank.data.types import Collection
from crossrank.errors import ConfigError
from crossrank.models.cross_encoder import CrossEncoderModel
from crossrank.models.heads import HeadSpec
from crossrank.models.tiny import build_tiny_checkpoint
from crossrank.retrieval.bm25 import BM25Retriever
from crossrank.training.config import StageConfig, TrainConfig
from crossrank.training.data import (
    GroupSet,
    build_stage_groups,
    epoch_batches,
    split_micro_batches,
)
from crossrank.training.loader import ChunkedForward, prepare_micro_batch
from crossrank.training.schedule import WarmupDecay, build_scheduler, param_groups
from crossrank.training.trainable import CrossEncoderTrainable, prune_layers, set_dropout


def test_epoch_batches_are_a_pure_function_of_seed_stage_epoch() -> None:
    lengths = np.random.default_rng(0).integers(5, 500, size=1003)
    first = epoch_batches(lengths, 8, seed=1, stage=0, epoch=0)
    again = epoch_batches(lengths, 8, seed=1, stage=0, epoch=0)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]
    other = epoch_batches(lengths, 8, seed=1, stage=0, epoch=1)
    assert [b.tolist() for b in first] != [b.tolist() for b in other]
    flat = np.concatenate(first)
    assert len(first) == 1003 // 8 and all(len(b) == 8 for b in first)
    assert len(np.unique(flat)) == len(flat)  # each group at most once per epoch


def test_epoch_batches_bucket_by_length() -> None:
    lengths = np.random.default_rng(0).integers(5, 500, size=4000)
    batches = epoch_batches(lengths, 16, seed=3, stage=0, epoch=0)
    bucketed = np.mean([np.ptp(lengths[b]) for b in batches])
    shuffled = np.random.default_rng(0).permutation(len(lengths))[: len(batches) * 16]
    random_spread = np.mean([np.ptp(lengths[b]) for b in np.split(shuffled, len(batches))])
    assert bucketed < random_spread / 10
    # The batches are shuffled: their lengths do not run in pool order.
    firsts = np.array([lengths[b[0]] for b in batches[:50]])
    assert not (np.all(np.diff(firsts) <= 0) or np.all(np.diff(firsts) >= 0))


def test_split_micro_batches() -> None:
    batch = np.arange(12)
    assert [m.tolist() for m in split_micro_batches(batch, world_size=2, rank=0, grad_accum=3)] == [
        [0, 1], [2, 3], [4, 5],
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="divisible by 8"):
        split_micro_batches(batch, world_size=2, rank=0, grad_accum=4)


def test_group_set_pads_short_groups() -> None:
    groups = GroupSet.build(["q1", "q2"], [["a", "b", "c"], ["c", "d"]], [[1, 0, 0], [2, 0]], 3)
    assert groups.members.tolist() == [[0, 1, 2], [2, 3, -1]]
    assert groups.labels.tolist() == [[1, 0, 0], [2, 0, 0]]
    queries, docs, rows, cols = groups.pairs(np.array([1, 0]))
    assert list(queries) == ["q2", "q2", "q1", "q1", "q1"]
    assert list(docs) == ["c", "d", "a", "b", "c"]
    assert (rows.tolist(), cols.tolist()) == ([0, 0, 1, 1, 1], [0, 1, 0, 1, 2])
    assert groups.mask(np.array([1])).tolist() == [[True, True, False]]
    assert groups.num_pairs() == 5


@pytest.fixture(scope="module")
def tiny_collection(tiny_data: Path) -> Collection:
    return load_collection(tiny_data, "train")


def _groups(collection: Collection, stage: StageConfig, seed: int = 0) -> GroupSet:
    bm25 = BM25Retriever.build(collection.corpus)
    return build_stage_groups(
        stage,
        corpus=collection.corpus,
        queries=collection.queries,
        qrels=collection.qrels,
        retrieve=bm25.retrieve,
        seed=seed,
    )


def test_qrels_groups_put_the_judged_positive_first(tiny_collection: Collection) -> None:
    stage = StageConfig("s", "train_qrels", group_size=4, negative_depth=10)
    groups = _groups(tiny_collection, stage)
    assert len(groups) == len(tiny_collection.qrels) == 32
    corpus = tiny_collection.corpus
    for i, qid in enumerate(sorted(tiny_collection.qrels)):
        (doc_id,) = tiny_collection.qrels[qid]
        row = groups.texts[groups.members[i][groups.members[i] >= 0]]
        assert groups.queries[i] == tiny_collection.queries[qid].text
        assert row[0] == corpus[doc_id].full_text
        assert corpus[doc_id].full_text not in row[1:]  # a judged positive is never a negative
    assert (groups.labels[:, 0] == 1).all() and (groups.labels[:, 1:] == 0).all()
    assert _groups(tiny_collection, stage).members.tolist() == groups.members.tolist()


def test_synthetic_title_groups_use_abstracts(tiny_collection: Collection) -> None:
    stage = StageConfig("s", "synthetic_title", group_size=3, max_groups=10,
                        negatives={"random": 1.0})  # fmt: skip
    groups = _groups(tiny_collection, stage, seed=5)
    assert len(groups) == 10
    texts = {d.text for d in tiny_collection.corpus.values()}
    titles = {d.title for d in tiny_collection.corpus.values()}
    assert set(groups.queries) <= titles
    assert set(groups.texts) <= texts
    sentence = StageConfig("t", "synthetic_sentence", group_size=3, max_groups=5)
    assert len(_groups(tiny_collection, sentence)) == 5


def test_warmup_then_decay() -> None:
    cosine = WarmupDecay(total_steps=11, warmup_steps=1, kind="cosine")
    assert cosine(0) == 0.0 and cosine(1) == 1.0
    assert cosine(6) == pytest.approx(0.5) and cosine(11) == pytest.approx(0.0)
    assert WarmupDecay(10, 0, "constant")(7) == 1.0
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    scheduler = build_scheduler(optimizer, total_steps=10, warmup_ratio=0.1, kind="linear")
    lrs = []
    for _ in range(10):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.0, 1.0, 8 / 9, 7 / 9, 6 / 9, 5 / 9, 4 / 9, 3 / 9, 2 / 9, 1 / 9])


def test_layerwise_lr_decay_and_no_decay_for_1d(tmp_path: Path) -> None:
    model = CrossEncoderModel.from_pretrained(build_tiny_checkpoint(tmp_path / "m"))
    groups = param_groups(model.module, lr=1.0, weight_decay=0.1, llrd=0.5)
    by_name = {}
    for group in groups:
        for param in group["params"]:
            by_name[param.data_ptr()] = (group["lr"], group["weight_decay"])
    named = dict(model.module.named_parameters())

    def of(name: str) -> tuple[float, float]:
        return by_name[named[name].data_ptr()]

    assert of("classifier.weight") == (1.0, 0.1)  # top: 2 layers -> depth 3
    assert of("classifier.bias") == (1.0, 0.0)
    assert of("bert.encoder.layer.1.output.dense.weight") == (0.5, 0.1)
    assert of("bert.encoder.layer.0.output.dense.weight") == (0.25, 0.1)
    assert of("bert.embeddings.word_embeddings.weight") == (0.125, 0.1)
    assert of("bert.embeddings.LayerNorm.weight") == (0.125, 0.0)
    assert sum(len(g["params"]) for g in groups) == len(named)


def test_collate_matches_inference_scores(tiny_backbone: Path) -> None:
    model = CrossEncoderModel.from_pretrained(tiny_backbone)
    trainable = CrossEncoderTrainable(model, max_length=24, max_query_length=8).eval()
    queries = ["what is the rank of a long query with many words", "cats", "gene study"]
    docs = ["bm25 is a ranking function " * 6, "dogs and cats", ""]
    with torch.no_grad():
        logits = trainable(**trainable.collate(queries, docs)).numpy()
    assert trainable.pair_lengths(queries, docs).tolist()[0] == 24
    # Same rows as inference once the query is cut to max_query_length tokens.
    cut = trainable.tokenizer.decode(trainable.tokenizer(queries[0])["input_ids"][1:9])
    ce = CrossEncoder(model, backend="torch", device="cpu", max_length=24)
    expected = ce.predict([(cut, docs[0]), (queries[1], docs[1]), (queries[2], docs[2])])
    np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_graded_head_scores_expected_grade(tmp_path: Path) -> None:
    path = build_tiny_checkpoint(tmp_path / "g", heads=[HeadSpec.graded(3)])
    model = CrossEncoderModel.from_pretrained(path)
    trainable = CrossEncoderTrainable(model, max_length=32, max_query_length=8).eval()
    batch = trainable.collate(["cats"], ["dogs"])
    with torch.no_grad():
        score = trainable(**batch)
        probs = torch.softmax(model.module(**batch).logits, dim=1)
    assert score.item() == pytest.approx((probs @ torch.arange(3.0)).item(), abs=1e-6)


def test_prune_and_dropout(tmp_path: Path, tiny_config: Callable[..., TrainConfig]) -> None:
    del tiny_config
    model = CrossEncoderModel.from_pretrained(build_tiny_checkpoint(tmp_path / "m"))
    prune_layers(model.module, [1])
    set_dropout(model.module, hidden=0.3, attention=0.05)
    assert model.config.num_hidden_layers == 1
    rates = {n: m.p for n, m in model.module.named_modules() if isinstance(m, torch.nn.Dropout)}
    assert rates["bert.encoder.layer.0.attention.self.dropout"] == 0.05
    assert rates["bert.encoder.layer.0.output.dropout"] == 0.3 and rates["dropout"] == 0.3
    trainable = CrossEncoderTrainable(model, max_length=32, max_query_length=8)
    out = trainable.save_pretrained(tmp_path / "saved", max_shard_size="15MB")
    reloaded = CrossEncoderModel.from_pretrained(out)
    assert reloaded.config.num_hidden_layers == 1
    with pytest.raises(ConfigError, match="out of range"):
        prune_layers(reloaded.module, [0, 3])
    with pytest.raises(ConfigError, match="exceeds the model's"):
        CrossEncoderTrainable(model, max_length=100_000)


def test_chunked_micro_batch_matches_one_padded_forward(tiny_backbone: Path) -> None:
    model = CrossEncoderTrainable(
        CrossEncoderModel.from_pretrained(tiny_backbone), max_length=48, max_query_length=8
    ).eval()
    docs = [["cats " * n for n in (1, 30, 4)], ["dogs " * n for n in (20, 2, 9)]]
    groups = GroupSet.build(["q one", "q two"], docs, [[1, 0, 0], [1, 0, 0]])
    ids = np.array([1, 0])
    whole = prepare_micro_batch(model, groups, ids)
    chunked = prepare_micro_batch(model, groups, ids, chunk_tokens=64)
    assert len(whole.chunks) == 1 and len(chunked.chunks) > 2
    widths = [c["input_ids"].shape[1] for c in chunked.chunks]
    assert max(widths) == whole.chunks[0]["input_ids"].shape[1] and min(widths) < max(widths)
    forward = ChunkedForward(model)
    with torch.no_grad():
        expected = forward(whole.chunks, whole.order)
        got = forward(chunked.chunks, chunked.order)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert (whole.rows.tolist(), whole.cols.tolist()) == ([0] * 3 + [1] * 3, [0, 1, 2] * 2)
