"""Instants as the pipeline writes and reads them: fixed-width ISO-8601 UTC text, aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from clickstream.core.errors import InputError


def iso(ts: datetime) -> str:
    """Fixed-width ISO-8601 UTC with microseconds, so string order is time order."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant(value: str | datetime, *, field: str = "as_of") -> datetime:
    """An ISO-8601 instant as an aware UTC datetime (``Z`` accepted; a naive value means UTC). Text that is not an
    instant raises :class:`InputError` naming ``field``."""
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except (AttributeError, ValueError) as exc:
            raise InputError(f"not an ISO-8601 instant: {value!r}", field=field) from exc
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
