"""The FastAPI application: Cohere-, TEI- and pair-shaped scoring, health and metrics.

======================  ==================================================================
``POST /v1/rerank``     Cohere v2 rerank: ``{model?, query, documents, top_n?,
                        return_documents?, max_tokens_per_doc?}`` (+ ``raw_scores``,
                        ``passages`` extensions) -> ``{id, results, meta}``
``POST /rerank``        TEI rerank: ``{query, texts, truncate?, raw_scores?, return_text?}``
                        -> ``[{index, score, text?}]`` sorted by score
``POST /v1/score``      ``{pairs: [[query, document], ...], raw_scores?, passages?}`` ->
                        ``{id, scores, meta}`` in input order
``GET /health``         model, backend, score kind, limits
``GET /ready``          200 while accepting requests, 503 when shutting down
``GET /metrics``        Prometheus text
``GET /docs``           OpenAPI UI (``/openapi.json``: the schema)
======================  ==================================================================

Scores are calibrated probabilities by default (see :mod:`crossrank.serving.model`), raw
logits with ``raw_scores``. With an API key configured, the three scoring endpoints need
``Authorization: Bearer <key>``; health, readiness, metrics and the schema stay open.

Example:
    >>> app = create_app(ServedModel.load(path, CrossEncoder.from_pretrained(path)), ServerConfig())  # doctest: +SKIP
    >>> run_server(app, listen("127.0.0.1", 8080), graceful_timeout_s=30)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossrank import __version__
from crossrank.serving.config import ServerConfig
from crossrank.serving.errors import ServingError
from crossrank.serving.limits import (
    ASGIApp,
    BodyLimitMiddleware,
    LoadShedMiddleware,
    Receive,
    Scope,
    Send,
    check_api_key,
)
from crossrank.serving.metrics import CONTENT_TYPE, ServerMetrics
from crossrank.serving.model import ServedModel
from crossrank.serving.schemas import (
    ErrorResponse,
    Health,
    RerankRequest,
    RerankResponse,
    ScoreRequest,
    ScoreResponse,
    TeiRank,
    TeiRerankRequest,
    field_errors,
)
from crossrank.serving.service import Scored, ScoringService

logger = logging.getLogger(__name__)
SCORING_PATHS = frozenset({"/v1/rerank", "/rerank", "/v1/score"})
ENDPOINTS = frozenset(
    {
        "/v1/rerank",
        "/rerank",
        "/v1/score",
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/docs",
    }
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422, 429, 503, 504)
}
_bearer = HTTPBearer(auto_error=False)  # declares the scheme in the OpenAPI schema


def create_app(model: ServedModel, config: ServerConfig) -> FastAPI:
    """The ASGI app; its lifespan starts the batcher and drains it on shutdown."""
    metrics = ServerMetrics()
    service = ScoringService(model, config, metrics)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="crossrank",
        version=__version__,
        description="Cross-encoder reranking (Cohere v2 and TEI compatible).",
        lifespan=lifespan,
    )
    app.state.service = service
    _add_error_handlers(app)
    app.include_router(_scoring_routes(service))
    app.include_router(_ops_routes(service))
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(LoadShedMiddleware, admit=service.admit, paths=SCORING_PATHS)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)  # outermost: sees every 4xx
    return app


def _scoring_routes(service: ScoringService) -> APIRouter:
    async def require_key(request: Request, _: object = Depends(_bearer)) -> None:
        check_api_key(service.config.api_key, request.headers.get("authorization"))

    router = APIRouter(dependencies=[Depends(require_key)], responses=_ERRORS, tags=["scoring"])

    @router.post("/v1/rerank", response_model=RerankResponse)
    async def rerank(body: RerankRequest) -> JSONResponse:
        """Cohere v2 rerank: documents sorted by relevance, the best ``top_n``."""
        service.check_model(body.model)
        texts = body.texts()
        scored = await service.score(
            [body.query] * len(texts),
            texts,
            what="documents",
            raw=body.raw_scores,
            passages=body.passages,
            max_tokens_per_doc=body.max_tokens_per_doc,
        )
        results = _cohere_results(body, scored)
        return JSONResponse({"id": _request_id(), "results": results, "meta": scored.meta()})

    @router.post("/rerank", response_model=list[TeiRank])
    async def tei_rerank(body: TeiRerankRequest) -> JSONResponse:
        """text-embeddings-inference rerank: ``[{index, score, text?}]``, best first."""
        scored = await service.score(
            [body.query] * len(body.texts),
            body.texts,
            what="texts",
            raw=body.raw_scores,
            truncate=body.truncate,
        )
        ranks = [{"index": i, "score": score} for i, score in _ranked(scored.scores, None)]
        if body.return_text:
            for rank in ranks:
                rank["text"] = body.texts[rank["index"]]
        return JSONResponse(ranks)

    @router.post("/v1/score", response_model=ScoreResponse)
    async def score(body: ScoreRequest) -> JSONResponse:
        """Scores of (query, document) pairs in input order."""
        service.check_model(body.model)
        queries = [q for q, _ in body.pairs]
        docs = [d for _, d in body.pairs]
        scored = await service.score(
            queries, docs, what="pairs", raw=body.raw_scores, passages=body.passages
        )
        body_out = {"id": _request_id(), "scores": scored.scores.tolist(), "meta": scored.meta()}
        return JSONResponse(body_out)

    return router


def _cohere_results(body: RerankRequest, scored: Scored) -> list[dict[str, object]]:
    """``results`` of a Cohere response: best first, the documents when asked for."""
    results: list[dict[str, object]] = []
    for index, score in _ranked(scored.scores, body.top_n):
        result: dict[str, object] = {"index": index, "relevance_score": score}
        if body.return_documents:
            doc = body.documents[index]
            result["document"] = (
                {"text": doc} if isinstance(doc, str) else doc.model_dump(exclude_none=True)
            )
        results.append(result)
    return results


def _ops_routes(service: ScoringService) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", response_model=Health)
    async def health() -> JSONResponse:
        """Liveness, the model and how its scores are reported."""
        return JSONResponse(_health(service))

    @router.get("/ready", responses={503: {"model": ErrorResponse}})
    async def ready() -> JSONResponse:
        """200 while the batcher accepts requests; 503 while shutting down."""
        if not service.batcher.accepting:
            error = ServingError(503, "not_ready", "the server is shutting down")
            return JSONResponse(error.body(), status_code=503)
        return JSONResponse({"status": "ready"})

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus text exposition."""
        return PlainTextResponse(service.metrics.render(service.gauges()), media_type=CONTENT_TYPE)

    return router


def _health(service: ScoringService) -> dict[str, object]:
    model, config = service.model, service.config
    return {
        "status": "ok",
        "model": model.name,
        "backend": model.encoder.backend,
        "device": model.encoder.device,
        "max_length": model.max_length,
        "score_kind": model.score_kind(raw=False),
        "queue_depth": service.batcher.queue_depth,
        "limits": {
            "max_batch_tokens": config.max_batch_tokens,
            "max_request_tokens": config.max_request_tokens,
            "max_client_docs": config.max_client_docs,
            "max_queue": config.max_queue,
            "max_body_bytes": config.max_body_bytes,
            "request_timeout_s": config.request_timeout_s,
        },
    }


def _ranked(scores: np.ndarray, top_n: int | None) -> list[tuple[int, float]]:
    """(index, score) best first; ties keep input order."""
    order = np.argsort(-scores, kind="stable")[:top_n]
    return list(zip(order.tolist(), scores[order].tolist(), strict=True))


def _request_id() -> str:
    return str(uuid.uuid4())


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServingError)
    async def serving_error(_: Request, err: ServingError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        errors = field_errors(err.errors())
        message = "invalid request: " + "; ".join(f"{e.field}: {e.message}" for e in errors)
        body = {
            "message": message,
            "error_type": "validation",
            "errors": [e.model_dump() for e in errors],
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        body = {"message": str(err.detail), "error_type": "http"}
        return JSONResponse(body, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def internal(_: Request, err: Exception) -> JSONResponse:
        logger.error("internal error: %r", err, exc_info=err)
        body = {
            "message": f"internal server error ({type(err).__name__})",
            "error_type": "internal",
        }
        return JSONResponse(body, status_code=500)


class RequestMetricsMiddleware:
    """Counts every HTTP response by endpoint and status and times it (plain ASGI)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, endpoints: Sequence[str] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = frozenset(endpoints) or ENDPOINTS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in self.endpoints else "other"
        status = 500  # if the app fails before starting a response
        started = time.perf_counter()

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight += 1
        try:
            await self.app(scope, receive, tracking_send)
        finally:
            self.metrics.in_flight -= 1
            self.metrics.observe_request(endpoint, status, time.perf_counter() - started)
