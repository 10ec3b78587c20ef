"""BEIR reading/writing and every malformed-input message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossrank.data import (
    Document,
    Query,
    iter_corpus,
    load_collection,
    load_corpus,
    load_queries,
    read_qrels_tsv,
    write_collection,
)
from crossrank.errors import DataFormatError, DataWarning, MissingDataError


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _jsonl(*objs: dict) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


@pytest.fixture
def collection_dir(tmp_path: Path) -> Path:
    docs = [
        Document("d1", "Aspirin thins the blood.", "Aspirin"),
        Document("d2", "Statins lower LDL.", ""),
    ]
    queries = [Query("q1", "aspirin blood"), Query("q2", "statins"), Query("q3", "unjudged")]
    write_collection(
        tmp_path, docs, queries, {"q1": {"d1": 2, "d2": 0}, "q2": {"d2": 1}}, split="dev"
    )
    return tmp_path


def test_round_trip(collection_dir: Path) -> None:
    col = load_collection(collection_dir, "dev")
    assert col.corpus["d1"] == Document("d1", "Aspirin thins the blood.", "Aspirin")
    assert col.corpus["d1"].full_text == "Aspirin Aspirin thins the blood."
    assert col.corpus["d2"].full_text == "Statins lower LDL."
    assert set(col.queries) == {"q1", "q2"}  # only judged queries of the split
    assert col.qrels == {"q1": {"d1": 2, "d2": 0}, "q2": {"d2": 1}}
    assert col.split == "dev"


def test_integer_ids_and_null_title_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "corpus.jsonl", _jsonl({"_id": 7, "title": None, "text": "x"}))
    assert list(iter_corpus(path)) == [Document("7", "x", "")]


def test_missing_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "corpus.jsonl", _jsonl({"_id": "a", "text": "x"}, {"_id": "b"}))
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl:2: missing field 'text'"):
        load_corpus(path)


def test_wrong_field_type(tmp_path: Path) -> None:
    path = _write(tmp_path / "queries.jsonl", _jsonl({"_id": "q", "text": ["not", "a", "string"]}))
    with pytest.raises(DataFormatError, match=r"queries\.jsonl:1: field 'text' must be a string"):
        load_queries(path)


def test_duplicate_document_id(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "corpus.jsonl",
        _jsonl({"_id": "a", "text": "x"}, {"_id": "b", "text": "y"}, {"_id": "a", "text": "z"}),
    )
    with pytest.raises(
        DataFormatError, match=r"corpus\.jsonl:3: duplicate document id 'a' \(first on line 1\)"
    ):
        load_corpus(path)


def test_duplicate_query_id(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "queries.jsonl", _jsonl({"_id": "q", "text": "x"}, {"_id": "q", "text": "y"})
    )
    with pytest.raises(DataFormatError, match=r"queries\.jsonl:2: duplicate query id 'q'"):
        load_queries(path)


def test_empty_query_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "queries.jsonl", _jsonl({"_id": "q", "text": "  "}))
    with pytest.raises(DataFormatError, match=r"queries\.jsonl:1: query 'q' has empty text"):
        load_queries(path)


def test_empty_document_kept_with_warning(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "corpus.jsonl", _jsonl({"_id": "a", "text": ""}, {"_id": "b", "text": "y"})
    )
    with pytest.warns(DataWarning, match="1 document"):
        corpus = load_corpus(path)
    assert set(corpus) == {"a", "b"}


def test_non_integer_grade(tmp_path: Path) -> None:
    path = _write(tmp_path / "dev.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0.5\n")
    with pytest.raises(
        DataFormatError, match=r"dev\.tsv:3: relevance grade must be an integer, got '0\.5'"
    ):
        read_qrels_tsv(path)


def test_qrels_wrong_column_count(tmp_path: Path) -> None:
    path = _write(tmp_path / "dev.tsv", "q1\td1 1\n")
    with pytest.raises(DataFormatError, match=r"dev\.tsv:1: expected 3 tab-separated fields"):
        read_qrels_tsv(path)


def test_duplicate_judgment(tmp_path: Path) -> None:
    path = _write(tmp_path / "dev.tsv", "q1\td1\t1\nq1\td1\t0\n")
    with pytest.raises(
        DataFormatError, match=r"dev\.tsv:2: duplicate judgment for query 'q1', document 'd1'"
    ):
        read_qrels_tsv(path)


def test_qrels_query_absent_from_queries(collection_dir: Path) -> None:
    _write(
        collection_dir / "qrels" / "dev.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\n"
    )
    with pytest.raises(
        DataFormatError,
        match=r"dev\.tsv: 1 query id\(s\) absent from queries\.jsonl, e\.g\. \['q9'\]",
    ):
        load_collection(collection_dir, "dev")


def test_qrels_document_absent_from_corpus_is_kept_and_counted(collection_dir: Path) -> None:
    _write(collection_dir / "qrels" / "dev.tsv", "q1\td1\t1\nq1\tgone\t1\n")
    with pytest.warns(DataWarning, match="1 judged document"):
        col = load_collection(collection_dir, "dev")
    assert col.qrels == {"q1": {"d1": 1, "gone": 1}}


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "corpus.jsonl", "\n\n")
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl: file is empty"):
        load_corpus(path)


def test_truncated_last_record(tmp_path: Path) -> None:
    path = _write(tmp_path / "corpus.jsonl", _jsonl({"_id": "a", "text": "x"}) + '{"_id": "b", "te')
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl:2: truncated JSON record"):
        load_corpus(path)


def test_invalid_json_mid_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "corpus.jsonl", '{"_id": "a", "text": "x"}\nnot json\n')
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl:2: invalid JSON"):
        load_corpus(path)


def test_json_not_an_object(tmp_path: Path) -> None:
    path = _write(tmp_path / "corpus.jsonl", "[1, 2]\n")
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl:1: expected a JSON object, got list"):
        load_corpus(path)


def test_invalid_utf8(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "corpus.jsonl", b'{"_id": "a", "text": "x"}\n{"_id": "b", "text": "\xff"}\n'
    )
    with pytest.raises(
        DataFormatError, match=r"corpus\.jsonl:2: invalid UTF-8 \(byte 0xff at column 23\)"
    ):
        load_corpus(path)


def test_missing_files_and_split(tmp_path: Path, collection_dir: Path) -> None:
    with pytest.raises(MissingDataError, match="collection directory not found"):
        load_collection(tmp_path / "nope", "dev")
    with pytest.raises(MissingDataError, match=r"no qrels for split 'test'; available: \['dev'\]"):
        load_collection(collection_dir, "test")
    with pytest.raises(MissingDataError, match="file not found"):
        load_corpus(tmp_path / "absent.jsonl")


def test_corpus_streams_lazily(tmp_path: Path) -> None:
    # The reader is a generator: a bad record late in the file is not touched before it is reached.
    path = _write(tmp_path / "corpus.jsonl", _jsonl({"_id": "a", "text": "x"}) + "broken\n")
    stream = iter_corpus(path)
    assert next(stream).doc_id == "a"
    with pytest.raises(DataFormatError):
        next(stream)


def test_bom_tolerated(tmp_path: Path) -> None:
    path = _write(tmp_path / "queries.jsonl", "\ufeff" + _jsonl({"_id": "q", "text": "x"}))
    assert load_queries(path) == {"q": Query("q", "x")}
