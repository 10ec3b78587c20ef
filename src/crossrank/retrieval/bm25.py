"""Lexical first-stage retrieval: BM25 on bm25s with PyStemmer.

The defaults (k1=0.9, b=0.4, Lucene scoring, English stopwords, Snowball English stemmer,
title + text) are the reference settings the project measures against.

Example:
    >>> from crossrank.data.types import Document
    >>> docs = [Document("d1", "cats purr softly"), Document("d2", "dogs bark loudly")]
    >>> retriever = BM25Retriever.build(docs)
    >>> list(retriever.retrieve({"q1": "purring cat"}, top_k=5)["q1"])
    ['d1']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from crossrank.data.atomic import atomic_dir
from crossrank.data.types import Document, Run, as_document_list
from crossrank.errors import ConfigError, DataFormatError, MissingDataError, require_positive

SCHEMA_VERSION = 1
CONFIG_FILE = "crossrank_bm25.json"
DOC_IDS_FILE = "doc_ids.json"

BM25_METHODS = ("robertson", "lucene", "atire", "bm25l", "bm25+")
# Names bm25s understands for its built-in stopword lists (see bm25s.tokenization).
STOPWORD_LISTS = (
    "en", "english", "en_plus", "english_plus", "de", "german", "nl", "dutch", "fr", "french",
    "es", "spanish", "pt", "portuguese", "it", "italian", "ru", "russian", "sv", "swedish",
    "no", "norwegian", "zh", "chinese", "tr", "turkish", "ko", "korean", "da", "danish",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BM25Config:
    """BM25 index settings; persisted next to the index.

    ``stopwords`` is a bm25s stopword-list name or None; ``stemmer`` a PyStemmer
    algorithm name (``Stemmer.algorithms()``) or None.

    >>> BM25Config(k1=1.2).b
    0.4
    """

    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    stopwords: str | None = "en"
    stemmer: str | None = "english"
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("k1", "b"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name} must be a number, got {value!r}")
        if not self.k1 >= 0:
            raise ConfigError(f"k1 must be >= 0, got {self.k1!r}")
        if not 0 <= self.b <= 1:
            raise ConfigError(f"b must be in [0, 1], got {self.b!r}")
        if self.method not in BM25_METHODS:
            raise ConfigError(f"method must be one of {BM25_METHODS}, got {self.method!r}")
        if self.stopwords is not None and self.stopwords not in STOPWORD_LISTS:
            raise ConfigError(
                f"stopwords must be None or one of {STOPWORD_LISTS}, got {self.stopwords!r}"
            )
        if self.stemmer is not None and self.stemmer not in Stemmer.algorithms():
            raise ConfigError(
                f"stemmer must be None or one of {Stemmer.algorithms()}, got {self.stemmer!r}"
            )
        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError(
                f"unsupported BM25 schema_version {self.schema_version!r}; expected {SCHEMA_VERSION}"
            )


class BM25Retriever:
    """BM25 over a fixed corpus; implements ``crossrank.protocols.Retriever``.

    Documents scoring exactly 0 (with Lucene scoring: those sharing no term with the query)
    are *not* returned, so a ranking may be shorter than ``top_k``, and a query that is empty
    or made only of stopwords / unseen terms gets an empty ranking ``{}``.
    """

    def __init__(self, index: bm25s.BM25, doc_ids: Sequence[str], config: BM25Config) -> None:
        if index.scores["num_docs"] != len(doc_ids):
            raise ConfigError(
                f"index holds {index.scores['num_docs']} docs but {len(doc_ids)} doc ids were given"
            )
        self.config = config
        self._index = index
        self._doc_ids = np.asarray(doc_ids, dtype=object)
        self._positions = {doc_id: i for i, doc_id in enumerate(doc_ids)}
        self._stemmer = Stemmer.Stemmer(config.stemmer) if config.stemmer else None

    @property
    def doc_ids(self) -> list[str]:
        return self._doc_ids.tolist()

    def __len__(self) -> int:
        return len(self._doc_ids)

    @classmethod
    def build(
        cls, docs: Mapping[str, Document] | Iterable[Document], config: BM25Config | None = None
    ) -> BM25Retriever:
        """Tokenise ``doc.full_text`` (title + text) of every document and index it."""
        config = config or BM25Config()
        documents = as_document_list(docs)
        stemmer = Stemmer.Stemmer(config.stemmer) if config.stemmer else None
        tokens = bm25s.tokenize(
            [d.full_text for d in documents],
            stopwords=config.stopwords,
            stemmer=stemmer,
            show_progress=False,
        )
        index = bm25s.BM25(k1=config.k1, b=config.b, method=config.method)
        index.index(tokens, show_progress=False)
        return cls(index, [d.doc_id for d in documents], config)

    def save(self, directory: str | Path) -> None:
        """Write the bm25s index, the config and the doc-id list to ``directory`` atomically."""
        with atomic_dir(directory) as build:
            self._index.save(str(build), show_progress=False)
            (build / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2))
            (build / DOC_IDS_FILE).write_text(json.dumps(self.doc_ids))

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False) -> BM25Retriever:
        """Load an index written by :meth:`save`; ``mmap`` memory-maps the score arrays."""
        root = Path(directory)
        if not (root / CONFIG_FILE).is_file():
            raise MissingDataError(f"no BM25 index at {root} (missing {CONFIG_FILE})")
        config = _load_config(root / CONFIG_FILE)
        doc_ids = _load_doc_ids(root / DOC_IDS_FILE)
        index = bm25s.BM25.load(str(root), mmap=mmap, show_progress=False)
        if index.scores["num_docs"] != len(doc_ids):
            raise DataFormatError(
                root / DOC_IDS_FILE,
                None,
                f"{len(doc_ids)} doc ids for an index of {index.scores['num_docs']} documents",
            )
        return cls(index, doc_ids, config)

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """Query-side tokenisation (same lowercasing, stopwords and stemmer as the corpus)."""
        return bm25s.tokenize(
            list(texts),
            stopwords=self.config.stopwords,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )

    def retrieve(self, queries: Mapping[str, str], top_k: int, n_threads: int = 0) -> Run:
        """Top ``top_k`` documents per query, best first.

        ``top_k`` larger than the corpus is clamped to the corpus size. ``n_threads`` is passed
        to bm25s (0: sequential, -1: all cores).

        >>> from crossrank.data.types import Document
        >>> r = BM25Retriever.build([Document("a", "red apple"), Document("b", "green pear")])
        >>> run = r.retrieve({"q": "apple", "empty": ""}, top_k=100)
        >>> {qid: {d: round(s, 4) for d, s in ranked.items()} for qid, ranked in run.items()}
        {'q': {'a': 0.3648}, 'empty': {}}
        """
        require_positive("top_k", top_k)
        if not queries:
            return {}
        qids = list(queries)
        k = min(top_k, len(self._doc_ids))
        indices, scores = self._index.retrieve(
            self.tokenize([queries[q] for q in qids]),
            k=k,
            n_threads=n_threads,
            show_progress=False,
        )
        # bm25s pads rankings with non-matching docs at score 0; they carry no evidence.
        matched = scores != 0
        doc_ids = self._doc_ids[indices]
        return {
            qid: dict(
                zip(doc_ids[i][matched[i]].tolist(), scores[i][matched[i]].tolist(), strict=True)
            )
            for i, qid in enumerate(qids)
        }

    def scores_for(self, query: str, doc_ids: Sequence[str]) -> np.ndarray:
        """BM25 scores of ``query`` against the given indexed documents (float32, aligned).

        >>> from crossrank.data.types import Document
        >>> r = BM25Retriever.build([Document("a", "red apple"), Document("b", "green pear")])
        >>> [round(float(s), 4) for s in r.scores_for("apple", ["b", "a"])]
        [0.0, 0.3648]
        """
        missing = [d for d in doc_ids if d not in self._positions]
        if missing:
            raise ConfigError(f"doc ids not in the index: {missing[:5]!r}")
        positions = np.fromiter(
            (self._positions[d] for d in doc_ids), dtype=np.int64, count=len(doc_ids)
        )
        token_ids = self._index.get_tokens_ids(self.tokenize([query])[0])
        if not token_ids:
            return np.zeros(len(doc_ids), dtype=np.float32)
        return self._index.get_scores_from_ids(token_ids)[positions].astype(np.float32, copy=False)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise MissingDataError(f"missing index file {path}") from err
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid JSON: {err.msg}") from err


def _load_config(path: Path) -> BM25Config:
    value = _read_json(path)
    if not isinstance(value, dict):
        raise DataFormatError(path, None, "expected a JSON object of BM25Config fields")
    try:
        return BM25Config(**value)
    except TypeError as err:
        raise DataFormatError(path, None, f"unexpected BM25Config fields: {err}") from err


def _load_doc_ids(path: Path) -> list[str]:
    value = _read_json(path)
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise DataFormatError(path, None, "expected a JSON list of doc id strings")
    return value
