"""HTTP-facing errors of the server: a status, a machine-readable type and a message.

Every error response has the body ``{"message": ..., "error_type": ...}`` (the keys Cohere
and TEI clients read), plus ``"errors"`` (field and message of each problem) on 422.

Example:
    >>> err = ServingError(413, "too_many_documents", "1200 documents; the limit is 1000")
    >>> err.body()
    {'message': '1200 documents; the limit is 1000', 'error_type': 'too_many_documents'}
"""

from __future__ import annotations

from collections.abc import Mapping

from crossrank.errors import CrossrankError


class ServingError(CrossrankError):
    """A request the server refuses or cannot finish; carries its HTTP status."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        return {"message": self.message, "error_type": self.error_type}


def bad_request(message: str) -> ServingError:
    return ServingError(400, "bad_request", message)


def too_large(error_type: str, message: str) -> ServingError:
    return ServingError(413, error_type, message)
