"""The native envelope: what the API checks before passing events on.

Only the envelope is judged here (shape, sizes, types of top-level fields). Events must be JSON objects, but their
contents travel on untouched and are judged one by one downstream, so one bad event never costs the good ones.

The check is the JSON Schema of :class:`clickstream.ingest.models.Envelope` (``clickstream.ingest.contract``) plus
the two rules a schema cannot state (a real calendar date-time, the configured event limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clickstream.core.errors import BadRequest
from clickstream.ingest.contract import SchemaError, check_envelope, schema_error
from clickstream.ingest.rules import aware_iso_datetime, too_many_events

# Identity fields a client might send; the user id only ever comes from the verified token.
UNTRUSTED_IDENTITY_KEYS = frozenset({"user_id", "userId", "userid", "uid"})


class InvalidEnvelope(BadRequest):
    """The envelope's shape is wrong; ``field`` names the failing path, e.g. ``events.3`` (HTTP 400)."""

    code = "invalid_envelope"


@dataclass(frozen=True)
class Checked:
    app_id: str
    sent_at: str
    anonymous_id: str


def parse_envelope(document: Any, *, max_events: int) -> Checked:
    """Check ``document`` (parsed JSON) as an envelope; the first failure becomes a 400 naming its path."""
    message: str | None
    if not isinstance(document, dict):
        raise InvalidEnvelope("the body must be a JSON object")
    try:
        check_envelope(document)
    except SchemaError as exc:
        message, field = schema_error(exc)
        raise InvalidEnvelope(message, field=field) from None
    try:
        aware_iso_datetime(document["sent_at"])
    except ValueError as exc:
        raise InvalidEnvelope(str(exc), field="sent_at") from None
    if (message := too_many_events(len(document["events"]), max_events)) is not None:
        raise InvalidEnvelope(message, field="events")
    return Checked(
        app_id=document["app_id"], sent_at=document["sent_at"], anonymous_id=document["anonymous_id"]
    )


def trusted_context(document: dict[str, Any]) -> dict[str, Any] | None:
    """The envelope's context as sent, minus any identity a client claims for itself."""
    context = document.get("context")
    if context is None:
        return None
    return {k: v for k, v in context.items() if k not in UNTRUSTED_IDENTITY_KEYS}
