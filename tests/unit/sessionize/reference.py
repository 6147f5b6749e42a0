"""An independent, deliberately plain implementation of the sessionization rule (``sessionize.rule``), for comparison.

Loops over dicts, no SQL: dedupe by event_id (first received wins), order each visitor's events by
(event_ts, event_id), and start a new session at the first event, after a gap > timeout, or more than the
maximum length after the current session's start.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


def session_id_of(anonymous_id: str, start: datetime) -> str:
    return hashlib.md5(f"{anonymous_id}|{epoch_us(start)}".encode()).hexdigest()


def row_key(row: dict) -> tuple:
    return (row["source_object"], row["source_line"])


def _nulls_last(value):
    return (value is None, value)


def dedupe(rows: list[dict]) -> tuple[list[dict], dict[tuple, str]]:
    """The kept rows, and the drop reason of every other row (by ``row_key``)."""
    copies: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        copies[row["event_id"]].append(row)
    kept: list[dict] = []
    dropped: dict[tuple, str] = {}
    for group in copies.values():
        group = sorted(
            group,
            key=lambda r: (
                _nulls_last(r.get("received_at")),
                _nulls_last(r.get("event_ts")),
                _nulls_last(r.get("source_object")),
                _nulls_last(r.get("source_line")),
            ),
        )
        first = group[0]
        kept.append(first)
        for other in group[1:]:
            a, b = first.get("payload_hash"), other.get("payload_hash")
            conflict = a is not None and b is not None and a != b
            dropped[row_key(other)] = "duplicate_conflict" if conflict else "duplicate"
    return kept, dropped


def campaign_of(row: dict) -> tuple | None:
    utm = (row.get("utm_source"), row.get("utm_medium"), row.get("utm_campaign"))
    return utm if any(v is not None for v in utm) else None


def sessionize(
    rows: list[dict],
    timeout: timedelta = timedelta(minutes=30),
    max_length: timedelta = timedelta(hours=24),
    *,
    midnight_tz: str | None = None,
    on_campaign: bool = False,
) -> tuple[dict[tuple, str], dict[tuple, str], list[dict]]:
    """(session_id by row key for kept rows, drop reason by row key, sessions with start/end/n_events).

    Optional splits: another local day than the previous event (``midnight_tz``), or a campaign other than the
    visitor's latest one (``on_campaign``); neither splits two events at the same instant."""
    zone = ZoneInfo(midnight_tz) if midnight_tz else None
    kept, dropped = dedupe(rows)
    by_visitor: dict[str, list[dict]] = defaultdict(list)
    for row in kept:
        by_visitor[row["anonymous_id"]].append(row)
    assigned: dict[tuple, str] = {}
    sessions: dict[str, dict] = {}
    for anonymous_id, events in by_visitor.items():
        events.sort(key=lambda r: (r["event_ts"], r["event_id"]))
        previous = None
        start = None
        campaign = None
        for event in events:
            ts = event["event_ts"]
            split = False
            if previous is not None and ts > previous:
                if zone is not None and ts.astimezone(zone).date() != previous.astimezone(zone).date():
                    split = True
                if on_campaign and campaign_of(event) is not None and campaign_of(event) != campaign:
                    split = True
            if previous is None or ts - previous > timeout or ts - start > max_length or split:
                start = ts
            previous = ts
            campaign = campaign_of(event) or campaign
            sid = session_id_of(anonymous_id, start)
            assigned[row_key(event)] = sid
            session = sessions.setdefault(
                sid, {"session_id": sid, "anonymous_id": anonymous_id, "session_start": start, "n_events": 0}
            )
            session["session_end"] = ts
            session["n_events"] += 1
    return assigned, dropped, sorted(sessions.values(), key=lambda s: (s["anonymous_id"], s["session_start"]))
