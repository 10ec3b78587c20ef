"""Dense first-stage retrieval: bi-encoder embeddings, an on-disk cache, exact search.

Example:
    >>> import tempfile
    >>> from crossrank.data.types import Document
    >>> docs = [Document("d1", "Aspirin lowers fever."), Document("d2", "Rain in Spain.")]
    >>> retriever = DenseRetriever.build(docs, cache_dir=tempfile.mkdtemp())  # default MiniLM
    >>> list(retriever.retrieve({"q": "drugs that reduce fever"}, top_k=1)["q"])
    ['d1']
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from crossrank.data.atomic import atomic_write, atomic_write_bytes
from crossrank.data.types import Document, Run, as_document_list
from crossrank.errors import ConfigError, MissingDataError, require_positive
from crossrank.retrieval.encoder import DenseEncoder, resolve_model_path

logger = logging.getLogger(__name__)

CACHE_SCHEMA_VERSION = 1
EMBEDDINGS_FILE = "embeddings.npy"
MANIFEST_FILE = "manifest.json"
CacheStatus = Literal["hit", "miss", "stale", "disabled"]


def default_cache_dir(data: str | Path, model: str) -> Path:
    """Embedding cache folder of one (collection, model): ``$XDG_CACHE_HOME/crossrank/dense``.

    The cache's manifest still detects stale content, so a changed corpus is re-encoded.
    """
    root = Path(data).resolve()
    key = f"{root}|{resolve_model_path(model)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "crossrank" / "dense" / f"{root.name}-{digest}"


def exact_search(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    top_k: int,
    query_chunk: int = 256,
    doc_chunk: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k: returns (scores, doc indices), each (n_queries, k), best first.

    Memory is bounded by ``query_chunk * doc_chunk`` scores; ``top_k`` is clamped to the number
    of documents; ties are broken by lower document index.

    >>> docs = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    >>> scores, idx = exact_search(np.array([[1.0, 0.1]], dtype=np.float32), docs, top_k=2)
    >>> idx.tolist()
    [[0, 2]]
    """
    require_positive("top_k", top_k)
    require_positive("query_chunk", query_chunk)
    require_positive("doc_chunk", doc_chunk)
    if query_embeddings.ndim != 2 or doc_embeddings.ndim != 2:
        raise ConfigError("query and doc embeddings must be 2-D arrays")
    if query_embeddings.shape[1] != doc_embeddings.shape[1]:
        raise ConfigError(
            f"embedding dims differ: queries {query_embeddings.shape[1]}, docs {doc_embeddings.shape[1]}"
        )
    k = min(top_k, len(doc_embeddings))
    scores = np.empty((len(query_embeddings), k), dtype=np.float32)
    indices = np.empty((len(query_embeddings), k), dtype=np.int64)
    for start in range(0, len(query_embeddings), query_chunk):
        rows = slice(start, start + query_chunk)
        scores[rows], indices[rows] = _search_chunk(
            query_embeddings[rows], doc_embeddings, k, doc_chunk
        )
    return scores, indices


def _search_chunk(
    queries: np.ndarray, docs: np.ndarray, k: int, doc_chunk: int
) -> tuple[np.ndarray, np.ndarray]:
    best_scores = np.empty((len(queries), 0), dtype=np.float32)
    best_indices = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, len(docs), doc_chunk):
        block = (queries @ docs[start : start + doc_chunk].T).astype(np.float32, copy=False)
        block_indices = np.broadcast_to(np.arange(start, start + block.shape[1]), block.shape)
        cand_scores = np.concatenate([best_scores, block], axis=1)
        cand_indices = np.concatenate([best_indices, block_indices], axis=1)
        best_scores, best_indices = _top_k(cand_scores, cand_indices, k)
    # Final order: score descending, then doc index ascending for deterministic ties.
    order = np.lexsort((best_indices, -best_scores), axis=1)
    return np.take_along_axis(best_scores, order, 1), np.take_along_axis(best_indices, order, 1)


def _top_k(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape[1] <= k:
        return scores, indices
    keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(scores, keep, 1), np.take_along_axis(indices, keep, 1)


def corpus_fingerprint(documents: Sequence[Document]) -> str:
    """SHA-256 over every doc id, title and text, in corpus order.

    >>> corpus_fingerprint([Document("a", "x")]) == corpus_fingerprint([Document("a", "y")])
    False
    """
    digest = hashlib.sha256()
    for doc in documents:
        for part in (doc.doc_id, doc.title, doc.text):
            encoded = part.encode("utf-8")
            # Length-prefix each field so ("ab", "c") and ("a", "bc") hash differently.
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
    return digest.hexdigest()


class EmbeddingCache:
    """One cached embedding matrix per directory, keyed by a manifest (model, settings, corpus).

    A cache whose manifest differs from the expected one is *stale* and is never returned.
    Files are written to temporary names and renamed; the manifest is removed first and
    written last, so an interrupted save leaves a miss, not a wrong hit.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST_FILE

    @property
    def embeddings_path(self) -> Path:
        return self.directory / EMBEDDINGS_FILE

    def status(self, key: Mapping[str, object]) -> CacheStatus:
        """'hit' when the stored manifest matches ``key`` and the array is intact."""
        if not self.manifest_path.is_file():
            return "miss"
        try:
            stored = json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError:
            return "stale"
        expected = {"schema_version": CACHE_SCHEMA_VERSION, "key": json.loads(json.dumps(key))}
        if not isinstance(stored, dict) or any(stored.get(k) != v for k, v in expected.items()):
            return "stale"
        try:
            # mmap reads only the .npy header: cheap even for a large matrix.
            array = np.load(self.embeddings_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return "stale"
        intact = list(array.shape) == stored.get("shape") and array.dtype == np.float32
        return "hit" if intact else "stale"

    def load(self, key: Mapping[str, object]) -> np.ndarray:
        """The cached float32 matrix for ``key``; raises MissingDataError unless it is a hit."""
        status = self.status(key)
        if status != "hit":
            raise MissingDataError(f"no valid embedding cache in {self.directory} ({status})")
        return np.load(self.embeddings_path, allow_pickle=False)

    def save(self, key: Mapping[str, object], embeddings: np.ndarray) -> None:
        """Store ``embeddings`` (cast to float32) under ``key``, replacing what was there."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.manifest_path.unlink(missing_ok=True)
        array = np.ascontiguousarray(embeddings, dtype=np.float32)
        with atomic_write_bytes(self.embeddings_path) as handle:
            np.save(handle, array)
        manifest = {"schema_version": CACHE_SCHEMA_VERSION, "key": key, "shape": list(array.shape)}
        with atomic_write(self.manifest_path) as handle:
            json.dump(manifest, handle, indent=2)


class DenseRetriever:
    """Exact inner-product retrieval over pre-computed document embeddings; a ``Retriever``."""

    def __init__(
        self,
        encoder: DenseEncoder,
        doc_ids: Sequence[str],
        embeddings: np.ndarray,
        cache_status: CacheStatus = "disabled",
    ) -> None:
        if embeddings.shape != (len(doc_ids), encoder.dim):
            raise ConfigError(
                f"embeddings shape {embeddings.shape} != ({len(doc_ids)}, {encoder.dim})"
            )
        self.encoder = encoder
        self.embeddings = embeddings
        self._doc_ids = np.asarray(doc_ids, dtype=object)
        # How build() obtained the embeddings: from the cache ("hit") or by encoding.
        self.cache_status = cache_status

    @property
    def doc_ids(self) -> list[str]:
        """Document ids in embedding-row order."""
        return self._doc_ids.tolist()

    @classmethod
    def build(
        cls,
        docs: Mapping[str, Document] | Iterable[Document],
        encoder: DenseEncoder | None = None,
        cache_dir: str | Path | None = None,
        show_progress: bool = False,
    ) -> DenseRetriever:
        """Embed ``doc.full_text`` of every document, reusing ``cache_dir`` when it is valid."""
        encoder = encoder or DenseEncoder()
        documents = as_document_list(docs)
        if cache_dir is None:
            embeddings = encoder.encode([d.full_text for d in documents], show_progress)
            return cls(encoder, [d.doc_id for d in documents], embeddings)
        cache = EmbeddingCache(cache_dir)
        key = {
            "encoder": encoder.identity(),
            "corpus": {"fingerprint": corpus_fingerprint(documents), "n_docs": len(documents)},
        }
        status = cache.status(key)
        if status == "hit":
            embeddings = cache.load(key)
        else:
            logger.info(
                "embedding cache %s in %s: encoding %d docs", status, cache_dir, len(documents)
            )
            embeddings = encoder.encode([d.full_text for d in documents], show_progress)
            cache.save(key, embeddings)
        return cls(encoder, [d.doc_id for d in documents], embeddings, cache_status=status)

    def retrieve(self, queries: Mapping[str, str], top_k: int) -> Run:
        """Top ``top_k`` documents per query by inner product, best first (clamped to corpus size)."""
        require_positive("top_k", top_k)
        if not queries:
            return {}
        qids = list(queries)
        query_embeddings = self.encoder.encode([queries[q] for q in qids])
        scores, indices = exact_search(query_embeddings, self.embeddings, top_k)
        doc_ids = self._doc_ids[indices]
        return {
            qid: dict(zip(doc_ids[i].tolist(), scores[i].tolist(), strict=True))
            for i, qid in enumerate(qids)
        }
