"""The native envelope: what the API checks before passing events on.

Only the envelope is judged here (shape, sizes, types of top-level fields). Events must be JSON objects, but their
contents travel on untouched and are judged one by one downstream, so one bad event never costs the good ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from clickstream.core.errors import BadRequest

# Identity fields a client might send; the user id only ever comes from the verified token.
UNTRUSTED_IDENTITY_KEYS = frozenset({"user_id", "userId", "userid", "uid"})


class InvalidEnvelope(BadRequest):
    """The envelope's shape is wrong; ``field`` names the failing path, e.g. ``events.3`` (HTTP 400)."""

    code = "invalid_envelope"


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must be printable text (no control characters)")
    return value


def _aware_iso_datetime(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time, e.g. 2026-03-01T10:00:00.000Z") from None
    if parsed.utcoffset() is None:
        raise ValueError("must carry a time zone offset (Z or ±hh:mm)")
    return value


Identifier = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_printable)]
AppId = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
IsoDateTime = Annotated[str, Field(min_length=10, max_length=64), AfterValidator(_aware_iso_datetime)]
ShortText = Annotated[str, Field(max_length=64)]


class PageContext(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    url: str | None = None
    referrer: str | None = None
    title: str | None = None


class RequestContext(BaseModel):
    """The envelope's ``context``: known fields are type-checked, anything else is kept as sent."""

    model_config = ConfigDict(strict=True, extra="allow")

    page: PageContext | None = None
    locale: ShortText | None = None
    timezone: ShortText | None = None
    screen: dict[str, Any] | None = None
    utm: dict[str, str | None] | None = None
    consent: dict[str, Any] | None = None


class Envelope(BaseModel):
    """``{"app_id", "sent_at", "anonymous_id", "context"?, "events": [{…}, …]}``; unknown top-level keys are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    app_id: AppId
    sent_at: IsoDateTime
    anonymous_id: Identifier
    context: RequestContext | None = None
    events: Annotated[list[dict[str, Any]], Field(min_length=1)]

    @field_validator("events")
    @classmethod
    def _at_most_max_events(cls, events: list[dict[str, Any]], info: ValidationInfo) -> list[dict[str, Any]]:
        limit = (info.context or {}).get("max_events")
        if limit is not None and len(events) > limit:
            raise ValueError(f"at most {limit} events per request, got {len(events)}")
        return events


def parse_envelope(document: Any, *, max_events: int) -> Envelope:
    """Check ``document`` (parsed JSON) as an envelope; the first failure becomes a 400 naming its path."""
    if not isinstance(document, dict):
        raise InvalidEnvelope("the body must be a JSON object")
    try:
        return Envelope.model_validate(document, context={"max_events": max_events})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidEnvelope(_message(first), field=field) from None


def _message(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def trusted_context(document: dict[str, Any]) -> dict[str, Any] | None:
    """The envelope's context as sent, minus any identity a client claims for itself."""
    context = document.get("context")
    if context is None:
        return None
    return {k: v for k, v in context.items() if k not in UNTRUSTED_IDENTITY_KEYS}
