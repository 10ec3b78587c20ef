"""The small interfaces every layer agrees on.

``Scorer`` is shared by every model that scores query-document pairs (cross-encoders,
bi-encoders, interaction models), so the engine, trainer and evaluator accept any of them.
``Retriever`` is the first-stage interface (BM25, dense, hybrid).

Example:
    >>> import numpy as np
    >>> class Overlap:
    ...     def score(self, queries, docs):
    ...         return np.array([len(set(q.split()) & set(d.split())) for q, d in zip(queries, docs)],
    ...                         dtype=np.float32)
    >>> isinstance(Overlap(), Scorer)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from crossrank.data.types import Run


@runtime_checkable
class Scorer(Protocol):
    """Scores aligned (query, document) pairs: ``score(qs, ds)[i]`` is the score of pair i."""

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Retriever(Protocol):
    """First-stage retrieval over an indexed corpus."""

    def retrieve(self, queries: Mapping[str, str], top_k: int) -> Run: ...
