"""The arrival hour of a raw object, taken from the object itself so a redelivery names the same outputs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_HIVE = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})/hr=(\d{2})(?:/|$)")


def arrival_hour_of(source_key: str, max_received_at: datetime | None) -> datetime | None:
    """The ``dt=…/hr=…`` partition of the raw key (Firehose's arrival time), else the hour of the object's
    latest ``received_at``; None when neither exists (an object without a single readable record)."""
    match = _HIVE.search(source_key)
    if match:
        try:
            return datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}:00:00+00:00")
        except ValueError:
            pass
    if max_received_at is None:
        return None
    return max_received_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
