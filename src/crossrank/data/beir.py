"""BEIR-format collections: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

The corpus is streamed: :func:`iter_corpus` parses each line exactly once, so a corpus of
millions of documents can be indexed without holding the raw JSON in memory.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> from crossrank.data.types import Document, Query
    >>> write_collection(root, [Document("d1", "Aspirin thins blood.", "Aspirin")],
    ...                  [Query("q1", "what does aspirin do")], {"q1": {"d1": 1}}, split="dev")
    >>> load_collection(root, "dev").qrels
    {'q1': {'d1': 1}}
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from crossrank.data.atomic import atomic_write
from crossrank.data.lines import iter_json_objects, iter_lines, require_str_field
from crossrank.data.types import Collection, Document, Qrels, Query
from crossrank.errors import DataFormatError, DataWarning, MissingDataError

_QRELS_HEADER = ("query-id", "corpus-id", "score")


def iter_corpus(path: str | Path) -> Iterator[Document]:
    """Stream documents from a BEIR ``corpus.jsonl``; duplicate ids raise DataFormatError."""
    first_line: dict[str, int] = {}
    for number, obj in iter_json_objects(path):
        doc_id = require_str_field(obj, "_id", path, number, allow_int=True)
        text = require_str_field(obj, "text", path, number)
        title = obj.get("title", "")
        if title is None:
            title = ""
        if not isinstance(title, str):
            raise DataFormatError(path, number, f"field 'title' must be a string, got {title!r}")
        if doc_id in first_line:
            raise DataFormatError(
                path,
                number,
                f"duplicate document id {doc_id!r} (first on line {first_line[doc_id]})",
            )
        first_line[doc_id] = number
        yield Document(doc_id=doc_id, text=text, title=title)


def load_corpus(path: str | Path) -> dict[str, Document]:
    """Load a whole corpus into a dict keyed by document id (one pass over the file)."""
    corpus = {doc.doc_id: doc for doc in iter_corpus(path)}
    empty = sum(1 for doc in corpus.values() if not doc.full_text.strip())
    if empty:
        warnings.warn(f"{path}: {empty} document(s) have no text; kept", DataWarning, stacklevel=2)
    return corpus


def load_queries(path: str | Path) -> dict[str, Query]:
    """Load ``queries.jsonl``; duplicate ids and empty query texts raise DataFormatError."""
    queries: dict[str, Query] = {}
    first_line: dict[str, int] = {}
    for number, obj in iter_json_objects(path):
        query_id = require_str_field(obj, "_id", path, number, allow_int=True)
        text = require_str_field(obj, "text", path, number)
        if query_id in first_line:
            raise DataFormatError(
                path,
                number,
                f"duplicate query id {query_id!r} (first on line {first_line[query_id]})",
            )
        if not text.strip():
            raise DataFormatError(path, number, f"query {query_id!r} has empty text")
        first_line[query_id] = number
        queries[query_id] = Query(query_id=query_id, text=text)
    return queries


def read_qrels_tsv(path: str | Path) -> Qrels:
    """Read BEIR qrels: an optional ``query-id corpus-id score`` header, then tab rows."""
    qrels: Qrels = {}
    first_line: dict[tuple[str, str], int] = {}
    for number, text in iter_lines(path):
        fields = text.split("\t")
        if number == 1 and tuple(f.strip() for f in fields) == _QRELS_HEADER:
            continue
        if len(fields) != 3:
            raise DataFormatError(
                path,
                number,
                f"expected 3 tab-separated fields (query-id, corpus-id, score), "
                f"got {len(fields)}: {text!r}",
            )
        query_id, doc_id, grade_text = (f.strip() for f in fields)
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


def parse_grade(text: str, path: str | Path, line: int) -> int:
    """Parse a relevance grade; only integers are accepted (``1.0`` is not)."""
    try:
        return int(text)
    except ValueError:
        raise DataFormatError(
            path, line, f"relevance grade must be an integer, got {text!r}"
        ) from None


def load_collection(root: str | Path, split: str) -> Collection:
    """Load corpus, the split's qrels and the queries they judge from a BEIR directory.

    Every query id in the qrels must exist in ``queries.jsonl``. Judged documents missing
    from the corpus are kept in the qrels (they still count as relevant) and counted in a
    DataWarning.
    """
    base = Path(root)
    if not base.is_dir():
        raise MissingDataError(f"{base}: collection directory not found")
    qrels_path = base / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (base / "qrels").glob("*.tsv"))
        raise MissingDataError(
            f"{qrels_path}: no qrels for split {split!r}; available: {available}"
        )
    corpus = load_corpus(base / "corpus.jsonl")
    all_queries = load_queries(base / "queries.jsonl")
    qrels = read_qrels_tsv(qrels_path)
    _check_qrels_ids(qrels, all_queries, corpus, qrels_path)
    queries = {qid: all_queries[qid] for qid in qrels}
    return Collection(corpus=corpus, queries=queries, qrels=qrels, split=split)


def _check_qrels_ids(
    qrels: Qrels, queries: Mapping[str, Query], corpus: Mapping[str, Document], path: Path
) -> None:
    missing_queries = [qid for qid in qrels if qid not in queries]
    if missing_queries:
        raise DataFormatError(
            path,
            None,
            f"{len(missing_queries)} query id(s) absent from queries.jsonl, "
            f"e.g. {missing_queries[:3]}",
        )
    missing_docs = [(q, d) for q, docs in qrels.items() for d in docs if d not in corpus]
    if missing_docs:
        warnings.warn(
            f"{path}: {len(missing_docs)} judged document(s) absent from the corpus, "
            f"e.g. {missing_docs[:3]}; kept in the qrels (they count as relevant but "
            "cannot be retrieved)",
            DataWarning,
            stacklevel=3,
        )


def write_corpus(path: str | Path, docs: Iterable[Document]) -> None:
    """Write ``corpus.jsonl`` atomically."""
    with atomic_write(path) as fh:
        for doc in docs:
            fh.write(_json_line({"_id": doc.doc_id, "title": doc.title, "text": doc.text}))


def write_queries(path: str | Path, queries: Iterable[Query]) -> None:
    """Write ``queries.jsonl`` atomically."""
    with atomic_write(path) as fh:
        for query in queries:
            fh.write(_json_line({"_id": query.query_id, "text": query.text}))


def write_qrels_tsv(path: str | Path, qrels: Qrels) -> None:
    """Write BEIR qrels (with header) atomically."""
    with atomic_write(path) as fh:
        fh.write("\t".join(_QRELS_HEADER) + "\n")
        for query_id, docs in qrels.items():
            for doc_id, grade in docs.items():
                fh.write(f"{query_id}\t{doc_id}\t{int(grade)}\n")


def write_collection(
    root: str | Path,
    docs: Iterable[Document],
    queries: Iterable[Query],
    qrels: Qrels,
    split: str,
) -> None:
    """Write a BEIR directory: corpus, queries and ``qrels/<split>.tsv``."""
    base = Path(root)
    write_corpus(base / "corpus.jsonl", docs)
    write_queries(base / "queries.jsonl", queries)
    write_qrels_tsv(base / "qrels" / f"{split}.tsv", qrels)


def _json_line(obj: dict[str, str]) -> str:
    # ensure_ascii=False keeps non-ASCII text readable and the file smaller.
    return json.dumps(obj, ensure_ascii=False) + "\n"
