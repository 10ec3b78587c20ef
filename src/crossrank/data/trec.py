"""TREC run files (``qid Q0 docid rank score tag``) and TREC qrels (``qid 0 docid grade``).

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "bm25.run"
    >>> write_run(path, {"q1": {"d1": 2.5, "d2": 1.0}}, tag="bm25")
    >>> path.read_text().splitlines()[0]
    'q1 Q0 d1 1 2.5 bm25'
    >>> read_run(path)
    {'q1': {'d1': 2.5, 'd2': 1.0}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from crossrank.data.atomic import atomic_write
from crossrank.data.beir import parse_grade
from crossrank.data.lines import iter_lines
from crossrank.data.types import Qrels, Run
from crossrank.errors import ConfigError, DataFormatError


def read_run(path: str | Path) -> Run:
    """Read a TREC run. Ranks in the file are ignored; scores define the order."""
    run: Run = {}
    first_line: dict[tuple[str, str], int] = {}
    for number, text in iter_lines(path):
        fields = text.split()
        if len(fields) != 6:
            raise DataFormatError(
                path,
                number,
                f"expected 6 whitespace-separated fields (qid Q0 docid rank score tag), "
                f"got {len(fields)}: {text!r}",
            )
        query_id, _, doc_id, rank_text, score_text, _ = fields
        _parse_int(rank_text, "rank", path, number)
        score = _parse_score(score_text, path, number)
        key = (query_id, doc_id)
        if key in first_line:
            raise DataFormatError(
                path,
                number,
                f"duplicate entry for query {query_id!r}, document {doc_id!r} "
                f"(first on line {first_line[key]})",
            )
        first_line[key] = number
        run.setdefault(query_id, {})[doc_id] = score
    return run


def write_run(
    path: str | Path, run: Mapping[str, Mapping[str, float]], tag: str = "crossrank"
) -> None:
    """Write a TREC run atomically, each query sorted by score (ties by doc id).

    Queries appear in the order of ``run``; non-finite scores raise ConfigError.
    """
    if not tag or any(ch.isspace() for ch in tag):
        raise ConfigError(f"run tag must be a non-empty string without spaces, got {tag!r}")
    with atomic_write(path) as fh:
        for query_id, docs in run.items():
            ranked = sorted(docs.items(), key=lambda item: (-item[1], item[0]))
            for rank, (doc_id, score) in enumerate(ranked, start=1):
                if not math.isfinite(score):
                    raise ConfigError(
                        f"non-finite score {score!r} for query {query_id!r}, document {doc_id!r}"
                    )
                fh.write(f"{query_id} Q0 {doc_id} {rank} {score!r} {tag}\n")


def read_trec_qrels(path: str | Path) -> Qrels:
    """Read TREC qrels (``qid iteration docid grade``); grades must be integers."""
    qrels: Qrels = {}
    first_line: dict[tuple[str, str], int] = {}
    for number, text in iter_lines(path):
        fields = text.split()
        if len(fields) != 4:
            raise DataFormatError(
                path,
                number,
                f"expected 4 fields (qid iteration docid grade), got {len(fields)}: {text!r}",
            )
        query_id, _, doc_id, grade_text = fields
        grade = parse_grade(grade_text, path, number)
        key = (query_id, doc_id)
        if key in first_line:
            raise DataFormatError(
                path,
                number,
                f"duplicate judgment for query {query_id!r}, document {doc_id!r} "
                f"(first on line {first_line[key]})",
            )
        first_line[key] = number
        qrels.setdefault(query_id, {})[doc_id] = grade
    return qrels


def write_trec_qrels(path: str | Path, qrels: Qrels) -> None:
    """Write TREC qrels atomically."""
    with atomic_write(path) as fh:
        for query_id, docs in qrels.items():
            for doc_id, grade in docs.items():
                fh.write(f"{query_id} 0 {doc_id} {int(grade)}\n")


def _parse_int(text: str, name: str, path: str | Path, line: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataFormatError(path, line, f"{name} must be an integer, got {text!r}") from None


def _parse_score(text: str, path: str | Path, line: int) -> float:
    try:
        score = float(text)
    except ValueError:
        raise DataFormatError(path, line, f"score must be a number, got {text!r}") from None
    if not math.isfinite(score):
        raise DataFormatError(path, line, f"score must be finite, got {text!r}")
    return score
