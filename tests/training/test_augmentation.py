"""Synthetic queries, query noise and passage extraction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crossrank.data.beir import iter_corpus
from crossrank.data.types import Document
from crossrank.errors import ConfigError, DataWarning
from crossrank.training.augmentation import (
    SyntheticPair,
    extract_passages,
    sentence_queries,
    split_sentences,
    term_dropout,
    term_substitution,
    title_queries,
)

SCIFACT = Path(__file__).resolve().parents[2] / "../shared/data/scifact"


def test_title_queries_pairs_and_skip_count() -> None:
    docs = [
        Document("d1", "Aspirin inhibits platelets.", "Aspirin and clotting"),
        Document("d2", "No title here.", ""),
        Document("d3", "   ", "Title without text"),
    ]
    with pytest.warns(DataWarning, match=r"title_queries: skipped 2 document\(s\)"):
        pairs = title_queries(docs)
    assert pairs == [
        SyntheticPair("Aspirin and clotting", "Aspirin inhibits platelets.", "d1", "title")
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One here. Two there.", ["One here.", "Two there."]),
        ("Values rose 3.5 fold. Then fell.", ["Values rose 3.5 fold.", "Then fell."]),
        ("Use drugs, e.g. Aspirin, daily. Done.", ["Use drugs, e.g. Aspirin, daily.", "Done."]),
        ("Smith et al. Showed it. Yes!", ["Smith et al. Showed it.", "Yes!"]),
        ("See Fig. 3 for data. Next one.", ["See Fig. 3 for data.", "Next one."]),
        ("Approx. five cases. Rare.", ["Approx. five cases.", "Rare."]),
        ("Known (ref. 3). Next.", ["Known (ref. 3).", "Next."]),
        ("Seventy (10. 4%) died. Next.", ["Seventy (10. 4%) died.", "Next."]),
        ("Enrolled in 2003. 25 left.", ["Enrolled in 2003. 25 left."]),
        ("Mix it. 1. Heat it. 2. Cool.", ["Mix it.", "1. Heat it.", "2. Cool."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("Why? Because (p < 0.05.) Ok.", ["Why?", "Because (p < 0.05.)", "Ok."]),
        ("ends with dot. then lowercase.", ["ends with dot. then lowercase."]),
        ("No terminal punctuation", ["No terminal punctuation"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_sentence_queries_use_one_sentence_and_the_rest() -> None:
    docs = [
        Document("d1", "Statins lower LDL levels. They reduce stroke risk. Side effects are rare."),
        Document("d2", "Only one sentence here."),
        Document("d3", "Too short. Also tiny."),
    ]
    with pytest.warns(DataWarning) as record:
        pairs = sentence_queries(docs, np.random.default_rng(0), min_words=4)
    messages = sorted(str(w.message) for w in record)
    assert messages == [
        "sentence_queries: skipped 1 document(s) with fewer than two sentences",
        "sentence_queries: skipped 1 document(s) with no sentence of >= 4 words",
    ]
    assert len(pairs) == 1
    pair = pairs[0]
    sentences = split_sentences(docs[0].text)
    assert pair.query in sentences
    assert pair.positive == " ".join(s for s in sentences if s != pair.query)
    assert (pair.doc_id, pair.kind) == ("d1", "sentence")


def test_sentence_queries_are_deterministic_and_vary_with_seed() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(10))
    docs = [Document(f"d{i}", text) for i in range(20)]
    first = sentence_queries(docs, np.random.default_rng(1))
    assert sentence_queries(docs, np.random.default_rng(1)) == first
    assert len({p.query for p in first}) > 1  # the generator advances between documents
    assert sentence_queries(docs, np.random.default_rng(2)) != first


def test_term_dropout() -> None:
    query = "aspirin reduces heart attack risk"
    rng = np.random.default_rng(0)
    assert term_dropout(query, 0.0, rng) == query
    for seed in range(50):
        out = term_dropout(query, 0.9, np.random.default_rng(seed))
        assert out  # never empty
        assert set(out.split()) <= set(query.split())
    assert len(term_dropout(query, 1.0, rng).split()) == 1
    a = [term_dropout(query, 0.5, np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    lengths = {len(term_dropout(query, 0.5, rng).split()) for _ in range(30)}
    assert len(lengths) > 1


def test_term_substitution_with_synonyms_and_vocab() -> None:
    rng = np.random.default_rng(0)
    synonyms = {"attack": ["infarction"], "heart": ["cardiac", "coronary"]}
    out = term_substitution("Heart attack risk", synonyms, 1.0, rng)
    head, middle, tail = out.split()
    assert head in {"cardiac", "coronary"}
    assert (middle, tail) == ("infarction", "risk")  # no entry for "risk": kept
    assert term_substitution("heart attack", synonyms, 0.0, rng) == "heart attack"
    vocab = ["alpha", "beta"]
    out = term_substitution("one two three", vocab, 1.0, rng)
    assert set(out.split()) <= set(vocab)
    assert term_substitution("a b c d", vocab, 0.5, np.random.default_rng(3)) == (
        term_substitution("a b c d", vocab, 0.5, np.random.default_rng(3))
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: term_dropout("   ", 0.1, r), r"term_dropout: query is empty"),
        (lambda r: term_dropout("a b", 1.5, r), r"p must be in \[0, 1\], got 1.5"),
        (lambda r: term_substitution("a", [], 0.5, r), r"vocabulary is empty"),
        (lambda r: term_substitution("a", "vocab", 0.5, r), r"synonym map or a vocabulary"),
        (
            lambda r: term_substitution("a", {"a": []}, 1.0, r),
            r"synonyms of 'a' must be a non-empty list",
        ),
    ],
)
def test_noise_argument_errors(call: Callable[[np.random.Generator], str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call(np.random.default_rng(0))


def test_extract_passages_cover_every_word() -> None:
    words = [f"w{i}" for i in range(23)]
    passages = extract_passages(" ".join(words), window_words=10, stride_words=5)
    assert [p.split()[0] for p in passages] == ["w0", "w5", "w10", "w13"]
    assert all(len(p.split()) == 10 for p in passages)
    assert {w for p in passages for w in p.split()} == set(words)
    assert extract_passages("a  b\nc", 5, 5) == ["a b c"]
    assert extract_passages("", 5, 5) == []
    assert extract_passages("a b c d", 2, 2) == ["a b", "c d"]


def test_extract_passages_validates_sizes() -> None:
    with pytest.raises(ConfigError, match=r"stride_words \(6\) must be <= window_words \(5\)"):
        extract_passages("a b", 5, 6)
    with pytest.raises(ConfigError, match=r"window_words must be > 0"):
        extract_passages("a b", 0, 1)


@pytest.mark.integration
def test_scifact_titles_and_sentences() -> None:
    corpus_path = SCIFACT / "corpus.jsonl"
    if not corpus_path.exists():
        pytest.skip(f"SciFact not found at {SCIFACT.resolve()}")
    docs = [doc for _, doc in zip(range(500), iter_corpus(corpus_path), strict=False)]
    pairs = title_queries(docs)
    assert len(pairs) >= 450
    assert all(p.query and p.positive for p in pairs)
    sentence_pairs = sentence_queries(docs, np.random.default_rng(0), min_words=5)
    assert len(sentence_pairs) >= 450
    assert all(p.query not in p.positive for p in sentence_pairs)
