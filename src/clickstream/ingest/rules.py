"""The request rules both readings of the contract share: the pydantic models (``models``) and the function's
compiled JSON Schemas (``envelope``, ``snowplow``). Plain Python, so the function can import it at no cost.

Every constraint a JSON Schema can say is a pattern or a length here; the two it cannot say — a real calendar
date-time, and at most ``max_events`` events — are the functions below.
"""

from __future__ import annotations

from datetime import datetime

# The identifier rule, defined once for every route and the validate step (``clickstream.core.schema``).
from clickstream.core.schema import IDENTIFIER_MESSAGE, PRINTABLE

# An ISO-8601 date-time that carries its offset; calendar validity is checked by ``aware_iso_datetime``.
ISO_DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?"
    r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"
)
PAYLOAD_DATA_PATTERN = r"^iglu:com\.snowplowanalytics\.snowplow/payload_data/jsonschema/1-"

PATTERN_MESSAGES = {
    PRINTABLE: IDENTIFIER_MESSAGE,
    ISO_DATETIME: "must be an ISO-8601 date-time with a time zone offset, e.g. 2026-03-01T10:00:00.000Z",
    PAYLOAD_DATA_PATTERN: "must be the payload_data schema (iglu:com.snowplowanalytics.snowplow/payload_data/…)",
}


def aware_iso_datetime(value: str) -> str:
    """``value`` if it is a real date-time with an offset (the pattern alone lets 2026-13-45 through)."""
    try:
        aware = datetime.fromisoformat(value).utcoffset() is not None
    except ValueError:
        aware = False
    if not aware:
        raise ValueError(PATTERN_MESSAGES[ISO_DATETIME])
    return value


def too_many_events(count: int, limit: int | None) -> str | None:
    """The message refusing ``count`` events against ``limit``, or None."""
    if limit is not None and count > limit:
        return f"at most {limit} events per request, got {count}"
    return None
