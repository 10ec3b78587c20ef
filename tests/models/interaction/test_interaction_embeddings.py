"""Term embeddings: word2vec/GloVe parsing and its errors, OOV vector, padding, freezing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crossrank.errors import ConfigError, DataFormatError, MissingDataError
from crossrank.models.interaction import (
    EmbeddingConfig,
    TermEmbeddings,
    WordTokenizer,
    read_word2vec_text,
)


def _write(tmp_path: Path, text: str, name: str = "vectors.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_glove_format_without_header(tmp_path: Path) -> None:
    vectors = read_word2vec_text(_write(tmp_path, "cat 1 2 3\ndog 4 5 6.5\n"))
    assert vectors.words == ("cat", "dog")
    assert vectors.vectors.dtype == np.float32
    assert vectors.vectors.tolist() == [[1, 2, 3], [4, 5, 6.5]]


def test_reads_word2vec_format_with_header_and_blank_lines(tmp_path: Path) -> None:
    vectors = read_word2vec_text(_write(tmp_path, "2 2\r\ncat 1 2\r\n\r\ndog -1e-1 2\r\n"))
    assert vectors.words == ("cat", "dog")
    assert vectors.vectors[1].tolist() == pytest.approx([-0.1, 2.0])


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("cat 1 2 3\ndog 4 5\n", 2, "expected a word and 3 values, got 2"),
        ("2 3\ncat 1 2 3\ndog 4 5 6 7\n", 3, "expected a word and 3 values, got 4"),
        ("cat 1 2\ndog 4 x\n", 2, "non-numeric value"),
        ("cat 1 nan\n", 1, "non-finite value 'nan'"),
        ("cat 1 2\ncat 3 4\n", 2, "duplicate word 'cat' (first on line 1)"),
        ("<pad> 1 2\n", 1, "reserved"),
        ("cat\n", 1, "expected a word and 1 values, got 0"),
        ("3 2\ncat 1 2\n", 1, "header announces 3 vectors, found 1"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DataFormatError) as caught:
        read_word2vec_text(path)
    assert caught.value.path == str(path)
    assert caught.value.line == line
    assert problem in caught.value.problem


def test_invalid_utf8_and_empty_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"cat 1 2\n\xff\xfe 1 2\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt:2: not valid UTF-8"):
        read_word2vec_text(bad)
    with pytest.raises(DataFormatError, match="no word vectors"):
        read_word2vec_text(_write(tmp_path, "\n\n", "empty.txt"))
    with pytest.raises(MissingDataError, match=r"nowhere\.txt"):
        read_word2vec_text(tmp_path / "nowhere.txt")


def test_oov_vector_is_the_mean_without_an_unk_entry(tmp_path: Path) -> None:
    embeddings = TermEmbeddings.from_word2vec_text(_write(tmp_path, "cat 1 2\ndog 3 6\n"))
    assert embeddings.vocabulary == ("<pad>", "<unk>", "cat", "dog")
    weight = embeddings.embedding.weight
    assert weight[0].tolist() == [0.0, 0.0]
    assert weight[1].tolist() == [2.0, 4.0]
    assert weight[3].tolist() == [3.0, 6.0]
    assert not weight.requires_grad
    assert embeddings.config.source == "word2vec"


def test_oov_vector_is_the_files_unk_entry_when_present(tmp_path: Path) -> None:
    path = _write(tmp_path, "cat 1 2\n<unk> 9 9\ndog 3 6\n")
    embeddings = TermEmbeddings.from_word2vec_text(path, trainable=True)
    assert embeddings.vocabulary == ("<pad>", "<unk>", "cat", "dog")
    assert embeddings.embedding.weight[1].tolist() == [9.0, 9.0]
    assert embeddings.embedding.weight.requires_grad


def test_word2vec_tokenizer_maps_unknown_words_to_oov(tmp_path: Path) -> None:
    embeddings = TermEmbeddings.from_word2vec_text(_write(tmp_path, "cat 1 2\nDog 3 6\n. 0 1\n"))
    tokenizer = embeddings.tokenizer()
    assert isinstance(tokenizer, WordTokenizer)
    # Exact form first ("Dog"), then lower-cased ("Cat" -> "cat"), else <unk>.
    assert tokenizer.encode(["Cat Dog dog, bird."], 10) == [[2, 3, 1, 1, 1, 4]]
    assert tokenizer.encode(["Cat Dog dog"], 2) == [[2, 3]]


def test_padding_row_never_receives_gradient() -> None:
    embeddings = TermEmbeddings.from_tensor(torch.randn(5, 3), trainable=True)
    embeddings(torch.tensor([[0, 2, 0]])).sum().backward()
    grad = embeddings.embedding.weight.grad
    assert grad[0].abs().sum() == 0 and grad[2].abs().sum() > 0


def test_from_tensor_copies_and_validates() -> None:
    weight = torch.randn(4, 2)
    embeddings = TermEmbeddings.from_tensor(weight)
    weight.zero_()
    assert embeddings.embedding.weight.abs().sum() > 0
    with pytest.raises(ConfigError, match="2-D"):
        TermEmbeddings.from_tensor(torch.randn(4))
    with pytest.raises(ConfigError, match="no tokenizer"):
        embeddings.tokenizer()
    with pytest.raises(ConfigError, match="pad_id"):
        EmbeddingConfig(vocab_size=3, dim=2, pad_id=3)
    with pytest.raises(ConfigError, match="source"):
        EmbeddingConfig(vocab_size=3, dim=2, source="fasttext")
