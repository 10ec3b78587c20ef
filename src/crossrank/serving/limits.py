"""Request limits enforced before routing: body size (413) and the optional API key (401).

:class:`BodyLimitMiddleware` is plain ASGI: a declared ``Content-Length`` over the limit is
refused before any byte is read, and a chunked body is counted as it arrives and refused as
soon as it passes the limit, so an oversized upload never sits in memory whole.

Example:
    >>> check_api_key(None, None)  # no key configured: everything passes
    >>> check_api_key("s3cret", "Bearer s3cret")
    >>> check_api_key("s3cret", "Bearer nope")
    Traceback (most recent call last):
    ...
    crossrank.serving.errors.ServingError: invalid API key
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from crossrank.serving.errors import ServingError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def check_api_key(expected: str | None, authorization: str | None) -> None:
    """Raise 401 unless ``authorization`` is ``Bearer <expected>`` (or no key is set)."""
    if expected is None:
        return
    challenge = {"WWW-Authenticate": "Bearer"}
    if not authorization:
        raise ServingError(
            401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'", challenge
        )
    scheme, _, token = authorization.partition(" ")
    # compare_digest: the time taken must not reveal how much of the key matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise ServingError(401, "unauthorized", "invalid API key", challenge)


class BodyLimitMiddleware:
    """Refuses HTTP request bodies larger than ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, f"{declared} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client disconnected
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send, f"more than {self.max_bytes} bytes")
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send, size: str) -> None:
        error = ServingError(
            413,
            "body_too_large",
            f"request body of {size} exceeds this server's limit of {self.max_bytes} bytes "
            "(--max-body-bytes)",
        )
        await send_error(send, error, close=True)


class LoadShedMiddleware:
    """Refuses requests to ``paths`` while ``admit()`` raises, before parsing their body.

    Under overload most requests are refused; parsing and validating each refused body
    would take CPU from the model, so the body is drained unread (which keeps the
    connection usable) and the refusal (429 with Retry-After, or 503) is sent at once.
    """

    def __init__(self, app: ASGIApp, admit: Callable[[], None], paths: frozenset[str]) -> None:
        self.app = app
        self.admit = admit
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            try:
                self.admit()
            except ServingError as error:
                await _drain(receive)
                await send_error(send, error)
                return
        await self.app(scope, receive, send)


async def send_error(send: Send, error: ServingError, *, close: bool = False) -> None:
    """Send ``error`` as a complete JSON response from plain ASGI code."""
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
