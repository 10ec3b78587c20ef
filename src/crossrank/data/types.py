"""Plain data types shared by every layer.

A *run* maps query id -> {doc id: score}; *qrels* map query id -> {doc id: grade}.
These are the shapes pytrec_eval and ir_measures use, so no conversion is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from crossrank.errors import ConfigError

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True, slots=True)
class Document:
    """One corpus entry. ``full_text`` joins title and body the way BEIR models expect."""

    doc_id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """Title and text separated by a space (title omitted when empty).

        >>> Document("d1", "Body.", "Title").full_text
        'Title Body.'
        """
        return f"{self.title} {self.text}" if self.title else self.text


@dataclass(frozen=True, slots=True)
class Query:
    query_id: str
    text: str


@dataclass(slots=True)
class Collection:
    """A BEIR collection: corpus, queries and the qrels of one split.

    ``queries`` holds only the queries judged in ``qrels`` when loaded with a split.
    """

    corpus: dict[str, Document]
    queries: dict[str, Query]
    qrels: Qrels = field(default_factory=dict)
    split: str | None = None

    def query_texts(self) -> dict[str, str]:
        return {qid: q.text for qid, q in self.queries.items()}


def as_document_list(docs: Mapping[str, Document] | Iterable[Document]) -> list[Document]:
    """Normalise a corpus to a list of Documents, rejecting empty corpora and duplicate ids.

    >>> [d.doc_id for d in as_document_list({"a": Document("a", "x")})]
    ['a']
    """
    documents = list(docs.values() if isinstance(docs, Mapping) else docs)
    if not documents:
        raise ConfigError("corpus is empty: at least one document is required")
    seen: set[str] = set()
    for doc in documents:
        if not isinstance(doc, Document):
            raise ConfigError(f"corpus entries must be Document, got {type(doc).__name__}")
        if doc.doc_id in seen:
            raise ConfigError(f"duplicate doc_id {doc.doc_id!r} in corpus")
        seen.add(doc.doc_id)
    if isinstance(docs, Mapping):
        for key, doc in docs.items():
            if key != doc.doc_id:
                raise ConfigError(f"corpus key {key!r} does not match its doc_id {doc.doc_id!r}")
    return documents
