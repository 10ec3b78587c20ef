"""First-stage retrieval: BM25 (bm25s), dense bi-encoders and rank fusion.

Every retriever implements ``crossrank.protocols.Retriever``. The dense retriever and its
encoder live in :mod:`crossrank.retrieval.dense` and :mod:`crossrank.retrieval.encoder`; they
are not re-exported here so that BM25-only users do not pay for importing torch.

Example:
    >>> from crossrank.data.types import Document
    >>> bm25 = BM25Retriever.build([Document("d1", "Aspirin lowers fever."), Document("d2", "Rain.")])
    >>> list(bm25.retrieve({"q": "fever"}, top_k=10)["q"])
    ['d1']
"""

from crossrank.data.types import as_document_list
from crossrank.retrieval.bm25 import BM25Config, BM25Retriever
from crossrank.retrieval.fusion import HybridRetriever, interpolate, reciprocal_rank_fusion

__all__ = [
    "BM25Config",
    "BM25Retriever",
    "HybridRetriever",
    "as_document_list",
    "interpolate",
    "reciprocal_rank_fusion",
]
