from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np
import pytest
import Stemmer

from crossrank.data.types import Document, as_document_list
from crossrank.errors import ConfigError, DataFormatError, MissingDataError
from crossrank.protocols import Retriever
from crossrank.retrieval.bm25 import (
    CONFIG_FILE,
    BM25Config,
    BM25Retriever,
)

QUERIES = {"q1": "purring cats", "q2": "a drug for fever", "q3": "fruit trees in Spain"}


def test_implements_retriever(corpus: list[Document]) -> None:
    assert isinstance(BM25Retriever.build(corpus), Retriever)


def test_scores_match_bm25s_directly(corpus: list[Document]) -> None:
    stemmer = Stemmer.Stemmer("english")
    direct = bm25s.BM25(k1=0.9, b=0.4)
    direct.index(bm25s.tokenize([d.full_text for d in corpus], stopwords="en", stemmer=stemmer))
    expected_idx, expected_scores = direct.retrieve(
        bm25s.tokenize(list(QUERIES.values()), stopwords="en", stemmer=stemmer), k=len(corpus)
    )
    run = BM25Retriever.build(corpus).retrieve(QUERIES, top_k=len(corpus))
    for row, qid in enumerate(QUERIES):
        positive = expected_scores[row] > 0
        expected = {
            corpus[i].doc_id: float(s)
            for i, s in zip(
                expected_idx[row][positive], expected_scores[row][positive], strict=True
            )
        }
        assert run[qid] == pytest.approx(expected)
        assert list(run[qid]) == list(expected)


def test_ranking_is_sensible_and_sorted(corpus: list[Document]) -> None:
    run = BM25Retriever.build(corpus).retrieve(QUERIES, top_k=3)
    assert next(iter(run["q1"])) == "d1"
    assert next(iter(run["q2"])) == "d3"
    for ranking in run.values():
        scores = list(ranking.values())
        assert scores == sorted(scores, reverse=True)
        assert all(s > 0 for s in scores)


def test_mapping_and_iterable_corpus_agree(corpus: list[Document]) -> None:
    from_list = BM25Retriever.build(corpus).retrieve(QUERIES, 5)
    from_map = BM25Retriever.build({d.doc_id: d for d in corpus}).retrieve(QUERIES, 5)
    from_gen = BM25Retriever.build(d for d in corpus).retrieve(QUERIES, 5)
    assert from_list == from_map == from_gen


def test_title_is_indexed() -> None:
    docs = [Document("a", "body text", "zebra"), Document("b", "other body", "")]
    assert list(BM25Retriever.build(docs).retrieve({"q": "zebra"}, 2)["q"]) == ["a"]


def test_top_k_larger_than_corpus_is_clamped(corpus: list[Document]) -> None:
    run = BM25Retriever.build(corpus).retrieve(
        {"q": "the cats dogs aspirin rain apple"}, top_k=1000
    )
    assert len(run["q"]) == len(corpus)


def test_top_k_truncates(corpus: list[Document]) -> None:
    run = BM25Retriever.build(corpus).retrieve({"q": "the cats dogs aspirin rain apple"}, top_k=2)
    assert len(run["q"]) == 2


@pytest.mark.parametrize("text", ["", "   ", "the and of", "unseenword xyzzy"])
def test_queries_without_indexed_terms_return_empty_ranking(
    corpus: list[Document], text: str
) -> None:
    run = BM25Retriever.build(corpus).retrieve({"q": text, "ok": "cats"}, top_k=3)
    assert run["q"] == {}
    assert run["ok"]


def test_no_queries_returns_empty_run(corpus: list[Document]) -> None:
    assert BM25Retriever.build(corpus).retrieve({}, top_k=3) == {}


@pytest.mark.parametrize("top_k", [0, -1])
def test_invalid_top_k(corpus: list[Document], top_k: int) -> None:
    with pytest.raises(ConfigError, match="top_k"):
        BM25Retriever.build(corpus).retrieve(QUERIES, top_k=top_k)


def test_threads_give_same_results(corpus: list[Document]) -> None:
    retriever = BM25Retriever.build(corpus)
    assert retriever.retrieve(QUERIES, 5, n_threads=2) == retriever.retrieve(QUERIES, 5)


def test_save_load_round_trip(tmp_path: Path, corpus: list[Document]) -> None:
    config = BM25Config(k1=1.2, b=0.75)
    original = BM25Retriever.build(corpus, config)
    original.save(tmp_path / "index")
    loaded = BM25Retriever.load(tmp_path / "index")
    assert loaded.config == config
    assert loaded.doc_ids == original.doc_ids
    assert loaded.retrieve(QUERIES, 5) == original.retrieve(QUERIES, 5)
    mmapped = BM25Retriever.load(tmp_path / "index", mmap=True)
    assert mmapped.retrieve(QUERIES, 5) == original.retrieve(QUERIES, 5)


def test_save_replaces_existing_index_and_leaves_no_temp_dirs(
    tmp_path: Path, corpus: list[Document]
) -> None:
    BM25Retriever.build(corpus[:2]).save(tmp_path / "index")
    BM25Retriever.build(corpus).save(tmp_path / "index")
    assert len(BM25Retriever.load(tmp_path / "index")) == len(corpus)
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_load_missing_index(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match="no BM25 index"):
        BM25Retriever.load(tmp_path / "nowhere")


def test_load_corrupt_config(tmp_path: Path, corpus: list[Document]) -> None:
    BM25Retriever.build(corpus).save(tmp_path / "index")
    (tmp_path / "index" / CONFIG_FILE).write_text("{not json")
    with pytest.raises(DataFormatError, match=CONFIG_FILE):
        BM25Retriever.load(tmp_path / "index")


def test_load_rejects_future_schema(tmp_path: Path, corpus: list[Document]) -> None:
    BM25Retriever.build(corpus).save(tmp_path / "index")
    path = tmp_path / "index" / CONFIG_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 99}))
    with pytest.raises(ConfigError, match="schema_version"):
        BM25Retriever.load(tmp_path / "index")


def test_load_rejects_mismatched_doc_ids(tmp_path: Path, corpus: list[Document]) -> None:
    BM25Retriever.build(corpus).save(tmp_path / "index")
    (tmp_path / "index" / "doc_ids.json").write_text(json.dumps(["d1"]))
    with pytest.raises(DataFormatError, match="1 doc ids"):
        BM25Retriever.load(tmp_path / "index")


def test_scores_for_matches_retrieve(corpus: list[Document]) -> None:
    retriever = BM25Retriever.build(corpus)
    ranking = retriever.retrieve({"q": QUERIES["q2"]}, 5)["q"]
    ids = [d.doc_id for d in corpus]
    scores = retriever.scores_for(QUERIES["q2"], ids)
    assert scores.dtype == np.float32
    expected = [ranking.get(doc_id, 0.0) for doc_id in ids]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert retriever.scores_for("", ids).tolist() == [0.0] * len(ids)


def test_scores_for_unknown_doc(corpus: list[Document]) -> None:
    with pytest.raises(ConfigError, match="nope"):
        BM25Retriever.build(corpus).scores_for("cats", ["d1", "nope"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"k1": -1.0}, "k1"),
        ({"k1": "0.9"}, "k1"),
        ({"b": 1.5}, "b"),
        ({"method": "bm99"}, "method"),
        ({"stopwords": "klingon"}, "stopwords"),
        ({"stemmer": "klingon"}, "stemmer"),
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_config_validation(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        BM25Config(**kwargs)


def test_no_stemmer_no_stopwords(corpus: list[Document]) -> None:
    retriever = BM25Retriever.build(corpus, BM25Config(stopwords=None, stemmer=None))
    assert retriever.retrieve({"q": "purring"}, 3)["q"] == {}
    assert next(iter(retriever.retrieve({"q": "the"}, 3)["q"])) in {"d1", "d3", "d4"}


def test_corpus_validation(corpus: list[Document]) -> None:
    with pytest.raises(ConfigError, match="empty"):
        as_document_list([])
    with pytest.raises(ConfigError, match="duplicate doc_id 'd1'"):
        as_document_list([corpus[0], corpus[0]])
    with pytest.raises(ConfigError, match="'x'"):
        as_document_list({"x": corpus[0]})
    with pytest.raises(ConfigError, match="Document"):
        as_document_list(["just a string"])
    with pytest.raises(ConfigError, match="Document"):
        as_document_list({"x": "just a string"})
