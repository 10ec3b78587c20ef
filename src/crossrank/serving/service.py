"""The scoring path shared by every endpoint: limits, token accounting, batching, scores.

``ScoringService.score`` checks a request against the server's limits (documents per
request, token budget, queue length), counts its tokens off the event loop, queues it on
the :class:`~crossrank.serving.batcher.MicroBatcher` and turns the engine's logits into the
reported scores. Failures become :class:`~crossrank.serving.errors.ServingError` with the
status the API promises (400, 404, 413, 429, 503, 504).

Example:
    >>> service = ScoringService(served_model, ServerConfig(), ServerMetrics())  # doctest: +SKIP
    >>> scored = await service.score(["q"] * 2, ["doc a", "doc b"], what="documents")  # doctest: +SKIP
    >>> scored.scores, scored.tokens  # doctest: +SKIP
    (array([0.62, 0.41], dtype=float32), 17)
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from crossrank.errors import ConfigError
from crossrank.inference.passages import PassageConfig
from crossrank.serving.batcher import (
    BatcherSettings,
    BatchTimeoutError,
    MicroBatcher,
    QueueFullError,
    ShuttingDownError,
)
from crossrank.serving.config import ServerConfig
from crossrank.serving.errors import ServingError, bad_request, too_large
from crossrank.serving.metrics import Gauges, ServerMetrics
from crossrank.serving.model import ServedModel
from crossrank.serving.schemas import PassageOptions
from crossrank.serving.tokens import TokenCount, TokenCounter

logger = logging.getLogger(__name__)
# Cohere bills one search unit per query with up to 100 documents.
DOCS_PER_SEARCH_UNIT = 100


@dataclass(frozen=True, slots=True, eq=False)
class Scored:
    """Reported scores of one request (input order) and its token accounting."""

    scores: np.ndarray
    tokens: int
    truncated: np.ndarray
    score_kind: str

    def meta(self) -> dict[str, object]:
        """The response's ``meta`` object (Cohere v2 keys plus truncation and score kind)."""
        truncated = np.flatnonzero(self.truncated).tolist()
        return {
            "api_version": {"version": "2"},
            "billed_units": {
                "search_units": max(1, math.ceil(len(self.scores) / DOCS_PER_SEARCH_UNIT))
            },
            "tokens": {"input_tokens": self.tokens, "output_tokens": 0},
            "truncated": bool(truncated),
            "truncated_documents": truncated,
            "score_kind": self.score_kind,
        }


class ScoringService:
    """Owns the batcher and token counter; one per app."""

    def __init__(self, model: ServedModel, config: ServerConfig, metrics: ServerMetrics) -> None:
        self.model = model
        self.config = config
        self.metrics = metrics
        self.counter = TokenCounter(model.tokenizer, model.max_length)
        settings = BatcherSettings(config.max_batch_tokens, config.max_queue, config.max_wait_s)
        self.batcher = MicroBatcher(model.logits, settings, on_batch=metrics.observe_batch)
        # Tokenising for the accounting runs here, not on the event loop.
        self._prep = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossrank-prep")
        # Admitted requests still being tokenised count against max_queue too, so queued
        # plus admitted requests (and their bodies in memory) never exceed it.
        self._preparing = 0

    def start(self) -> None:
        self.batcher.start()

    async def stop(self) -> None:
        """Finish queued work, then stop the threads (after uvicorn drained connections)."""
        await self.batcher.close(self.config.graceful_timeout_s)
        self._prep.shutdown(wait=False, cancel_futures=True)

    def gauges(self) -> Gauges:
        b = self.batcher
        return Gauges(b.queue_depth, b.queued_pairs, b.pairs_per_s)

    def check_model(self, requested: str | None) -> None:
        """404 unless ``requested`` (a request's ``model`` field) is None or this model."""
        if requested is not None and not self.model.matches(requested):
            raise ServingError(
                404,
                "model_not_found",
                f"model {requested!r} is not served here; this server serves {self.model.name!r}",
            )

    async def score(
        self,
        queries: Sequence[str],
        docs: Sequence[str],
        *,
        what: str,
        raw: bool = False,
        passages: PassageOptions | None = None,
        max_tokens_per_doc: int | None = None,
        truncate: bool = True,
    ) -> Scored:
        """Scores of aligned pairs; ``what`` names the list in errors ("documents", ...).

        ``truncate=False`` refuses (413) a request in which any document would lose text.
        """
        self._check_size(len(docs), what)
        config = self._passage_config(passages)
        self.admit()  # again: the queue may have filled since the middleware checked
        loop = asyncio.get_running_loop()
        self._preparing += 1
        try:
            docs, count = await loop.run_in_executor(
                self._prep, self._prepare, queries, docs, config, max_tokens_per_doc
            )
        except ConfigError as err:
            raise bad_request(str(err)) from err
        finally:
            self._preparing -= 1
        self._check_tokens(count, what, truncate)
        logits = await self._submit(list(zip(queries, docs, strict=True)), config, count.tokens)
        return Scored(
            self.model.present(logits, raw=raw),
            count.tokens,
            count.truncated,
            self.model.score_kind(raw=raw),
        )

    def _check_size(self, n: int, what: str) -> None:
        if n == 0:
            raise bad_request(f"{what} must not be empty")
        if n > self.config.max_client_docs:
            raise too_large(
                "too_many_documents",
                f"{n} {what} in one request; this server accepts at most "
                f"{self.config.max_client_docs} (--max-client-docs)",
            )

    def _passage_config(self, passages: PassageOptions | None) -> PassageConfig | None:
        if passages is None:
            return self.config.passages
        try:
            return passages.to_config()
        except ConfigError as err:
            raise bad_request(f"passages: {err}") from err

    def admit(self) -> None:
        """429 (queue full, with Retry-After) or 503 (shutting down) if refused now."""
        try:
            self.batcher.check_capacity(pending=self._preparing)
        except (QueueFullError, ShuttingDownError) as err:
            raise _unavailable(err) from err

    def _prepare(
        self,
        queries: Sequence[str],
        docs: Sequence[str],
        passages: PassageConfig | None,
        max_tokens_per_doc: int | None,
    ) -> tuple[Sequence[str], TokenCount]:
        if max_tokens_per_doc is not None:
            docs = self.counter.cut(docs, max_tokens_per_doc)
        return docs, self.counter.count(queries, docs, passages)

    def _check_tokens(self, count: TokenCount, what: str, truncate: bool) -> None:
        budget = self.config.max_request_tokens
        if count.tokens > budget:
            raise too_large(
                "token_budget_exceeded",
                f"the request needs {count.tokens} model-input tokens; this server's budget "
                f"per request is {budget} (--max-request-tokens): send fewer or shorter {what}",
            )
        if not truncate and count.truncated.any():
            first = int(np.argmax(count.truncated))
            raise too_large(
                "input_too_long",
                f"{what}[{first}] does not fit max_length {self.model.max_length} with the "
                f"query ({int(count.truncated.sum())} would be truncated); send truncate=true",
            )

    async def _submit(
        self, pairs: list[tuple[str, str]], passages: PassageConfig | None, tokens: int
    ) -> np.ndarray:
        try:
            return await self.batcher.submit(pairs, passages, tokens, self.config.request_timeout_s)
        except (QueueFullError, ShuttingDownError) as err:
            raise _unavailable(err) from err
        except BatchTimeoutError as err:
            raise ServingError(504, "timeout", f"{err} (--request-timeout)") from err
        except ConfigError as err:
            raise bad_request(str(err)) from err


def _unavailable(err: QueueFullError | ShuttingDownError) -> ServingError:
    if isinstance(err, QueueFullError):
        headers = {"Retry-After": str(err.retry_after_s)}
        return ServingError(429, "queue_full", str(err), headers)
    return ServingError(503, "shutting_down", str(err), {"Retry-After": "1"})
