"""Request and response bodies (pydantic), and 422 messages that name the bad field.

Three request shapes share one scoring path:

* :class:`RerankRequest`: Cohere v2 ``POST /v1/rerank``; extensions: ``raw_scores`` (logits
  instead of probabilities) and ``passages`` (windowed or BM25-passage scoring of long
  documents).
* :class:`TeiRerankRequest`: Hugging Face text-embeddings-inference ``POST /rerank``.
* :class:`ScoreRequest`: ``POST /v1/score``, raw (query, document) pairs.

Fields are strictly typed (``"3"`` is not an integer, ``1`` is not a string) and unknown
fields are refused, so typos fail loudly instead of being ignored.

Example:
    >>> RerankRequest.model_validate({"query": "q", "documents": ["a", {"text": "b"}]}).texts()
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
)

from crossrank.inference.passages import PassageConfig

PositiveInt = Annotated[StrictInt, Field(gt=0)]
_STRICT = ConfigDict(extra="forbid")
_DOCUMENT_ERROR = 'must be a string or an object {"text": string, "id": string (optional)}'
# Union member tags that pydantic puts in error locations; not field names.
_UNION_TAGS = frozenset({"string", "object"})


class PassageOptions(BaseModel):
    """Long-document scoring (see :class:`~crossrank.inference.passages.PassageConfig`)."""

    model_config = _STRICT
    window: PositiveInt = 128
    stride: PositiveInt = 64
    aggregate: Literal["maxp", "firstp", "sump", "avgp", "topk_mean"] = "maxp"
    k: PositiveInt = 3
    mode: Literal["windows", "bm25"] = "windows"
    max_windows: PositiveInt | None = None

    def to_config(self) -> PassageConfig:
        """The engine's config; ConfigError for inconsistent values (stride > window)."""
        return PassageConfig(**self.model_dump())


class RerankDocument(BaseModel):
    """A document given as an object; ``id`` is echoed back with ``return_documents``."""

    model_config = _STRICT
    text: StrictStr
    id: StrictStr | None = None


def _document_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict | RerankDocument) else None


DocumentIn = Annotated[
    Annotated[StrictStr, Tag("string")] | Annotated[RerankDocument, Tag("object")],
    Discriminator(
        _document_kind, custom_error_type="document_type", custom_error_message=_DOCUMENT_ERROR
    ),
]


class RerankRequest(BaseModel):
    """Cohere v2 rerank request (plus the ``raw_scores`` and ``passages`` extensions)."""

    model_config = _STRICT
    model: StrictStr | None = None
    query: StrictStr
    documents: list[DocumentIn]
    top_n: PositiveInt | None = None
    return_documents: StrictBool = False
    max_tokens_per_doc: PositiveInt | None = None
    raw_scores: StrictBool = Field(False, description="extension: logits, not probabilities")
    passages: PassageOptions | None = Field(None, description="extension: long documents")

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class TeiRerankRequest(BaseModel):
    """text-embeddings-inference rerank request (``truncate=false``: too long is 413)."""

    model_config = _STRICT
    query: StrictStr
    texts: list[StrictStr]
    truncate: StrictBool = False
    truncation_direction: Literal["Right", "right"] = "Right"
    raw_scores: StrictBool = False
    return_text: StrictBool = False


class ScoreRequest(BaseModel):
    """Scores of arbitrary (query, document) pairs, in order."""

    model_config = _STRICT
    model: StrictStr | None = None
    pairs: list[tuple[StrictStr, StrictStr]]
    raw_scores: StrictBool = False
    passages: PassageOptions | None = None


class ApiVersion(BaseModel):
    version: str = "2"


class BilledUnits(BaseModel):
    search_units: int


class Tokens(BaseModel):
    input_tokens: int
    output_tokens: int = 0


class Meta(BaseModel):
    """Billing and truncation of one request; ``score_kind`` says what the scores are."""

    api_version: ApiVersion
    billed_units: BilledUnits
    tokens: Tokens
    truncated: bool
    truncated_documents: list[int]
    score_kind: str


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankResponse(BaseModel):
    id: str
    results: list[RerankResult]
    meta: Meta


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None


class ScoreResponse(BaseModel):
    id: str
    scores: list[float]
    meta: Meta


class FieldError(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    """Body of every error response."""

    message: str
    error_type: str
    errors: list[FieldError] | None = None


class Health(BaseModel):
    status: str
    model: str
    backend: str
    device: str
    max_length: int
    score_kind: str
    queue_depth: int
    limits: dict[str, float | int]


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """One entry per bad field (pydantic errors merged), located like ``documents[2].text``.

    >>> field_errors([{"loc": ("body", "documents", 2, "object", "text"), "msg": "bad"}])
    [FieldError(field='documents[2].text', message='bad')]
    """
    merged: dict[str, list[str]] = {}
    for err in errors:
        name = _field_name(err.get("loc", ()))
        message = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":
            name, message = "body", _json_error(err)
        elif name == "body" and err.get("type") == "model_attributes_type":
            message = "the body must be a JSON object sent with Content-Type: application/json"
        merged.setdefault(name, [])
        if message not in merged[name]:
            merged[name].append(message)
    return [FieldError(field=k, message="; ".join(v)) for k, v in merged.items()]


def _json_error(err: Any) -> str:
    loc = err.get("loc", ())
    where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
    detail = (err.get("ctx") or {}).get("error", "invalid JSON")
    return f"malformed JSON{where}: {detail}"


def _field_name(loc: Sequence[Any]) -> str:
    parts = [p for p in loc if p not in _UNION_TAGS]
    if parts and parts[0] == "body":
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or "body"
