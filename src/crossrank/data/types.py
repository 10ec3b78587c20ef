"""Plain data types shared by every layer.

A *run* maps query id -> {doc id: score}; *qrels* map query id -> {doc id: grade}.
These are the shapes pytrec_eval and ir_measures use, so no conversion is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
