"""Limits and batching settings of the reranking server.

Example:
    >>> config = ServerConfig(max_client_docs=100, max_queue=8)
    >>> config.max_batch_tokens, config.max_request_tokens
    (65536, 262144)
    >>> ServerConfig(max_queue=0)
    Traceback (most recent call last):
    ...
    crossrank.errors.ConfigError: max_queue must be > 0, got 0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crossrank.errors import ConfigError, MissingDataError, require_positive
from crossrank.inference.passages import PassageConfig

DEFAULT_PORT = 8080


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the server accepts and how it batches.

    * ``max_batch_tokens``: model-input tokens (special tokens and every window included) of
      one merged model call. Requests are merged while they fit; a larger request runs
      alone. Smaller budgets answer sooner, larger ones bucket lengths a little better.
    * ``max_request_tokens``: model-input tokens of one request; more is 413.
    * ``max_client_docs``: documents (or pairs) per request; more is 413.
    * ``max_queue``: requests waiting for the model; one more is 429 with Retry-After.
    * ``max_body_bytes``: request body size; more is 413.
    * ``request_timeout_s``: queue wait plus scoring; longer is 504.
    * ``max_wait_s``: how long the batcher lingers for more requests when its batch is not
      full (0 disables; while the model runs, requests accumulate anyway).
    * ``api_key``: when set, scoring endpoints need ``Authorization: Bearer <key>`` (401).
    * ``passages``: default long-document handling (None: truncate); requests may override.
    * ``graceful_timeout_s``: how long shutdown waits for in-flight requests.
    """

    max_batch_tokens: int = 65_536
    max_request_tokens: int = 262_144
    max_client_docs: int = 1000
    max_queue: int = 64
    max_body_bytes: int = 10 * 1024 * 1024
    request_timeout_s: float = 60.0
    max_wait_s: float = 0.002
    api_key: str | None = field(default=None, repr=False)
    passages: PassageConfig | None = None
    graceful_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "max_batch_tokens",
            "max_request_tokens",
            "max_client_docs",
            "max_queue",
            "max_body_bytes",
            "request_timeout_s",
            "graceful_timeout_s",
        ):
            require_positive(name, getattr(self, name))
        if isinstance(self.max_wait_s, bool) or not self.max_wait_s >= 0:
            raise ConfigError(f"max_wait_s must be >= 0, got {self.max_wait_s!r}")
        if self.api_key is not None and not self.api_key:
            raise ConfigError("api_key must not be empty (use None for no key)")


def read_api_key(path: str | Path) -> str:
    """The API key in ``path`` (surrounding whitespace stripped); errors name the file.

    >>> read_api_key("/nonexistent/key")
    Traceback (most recent call last):
    ...
    crossrank.errors.MissingDataError: API key file /nonexistent/key does not exist
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"API key file {path} does not exist")
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ConfigError(f"API key file {path} is empty")
    if any(ch.isspace() for ch in key):
        raise ConfigError(f"API key file {path} must hold one key without inner whitespace")
    return key
