"""Test data for the sessionizer: event rows as dicts, Parquet in and out, and boundary-rich generated streams."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from clickstream.core.schema import VALIDATED_COLUMNS

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
TIMEOUT = timedelta(minutes=30)
CAP = timedelta(hours=24)

REQUIRED = ("event_id", "anonymous_id", "user_id", "event_type", "event_ts", "received_at", "page_url")
TYPES = dict(VALIDATED_COLUMNS)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def write_parquet(path: Path, rows: list[dict], columns: list[tuple[str, str]] | None = None) -> Path:
    """Rows as a Parquet file with the given (name, DuckDB type) columns (default: every validated column)."""
    columns = list(columns or VALIDATED_COLUMNS)
    con = _connect()
    params = [[row.get(name) for row in rows] for name, _ in columns]
    select = ", ".join(f'unnest(${i + 1}::{typ}[]) AS "{name}"' for i, (name, typ) in enumerate(columns))
    con.execute(f"CREATE TABLE t AS SELECT {select}", params)
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    con.close()
    return path


def read_parquet(path: Path) -> list[dict]:
    con = _connect()
    cursor = con.execute(f"SELECT * FROM read_parquet('{path}')")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    con.close()
    return rows


def parquet_columns(path: Path) -> list[tuple[str, str]]:
    con = _connect()
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    con.close()
    return [(r[0], r[1]) for r in described]


class Stream:
    """Builds event rows; every row gets a unique (source_object, source_line)."""

    def __init__(self, source_object: str = "raw/obj-0") -> None:
        self.rows: list[dict] = []
        self._ids = itertools.count()
        self._lines = itertools.count()
        self.source_object = source_object

    def add(
        self,
        anonymous_id: str,
        event_ts: datetime,
        *,
        event_id: str | None = None,
        received_at: datetime | None = None,
        source_object: str | None = None,
        payload_hash: str | None = None,
        event_type: str = "page_view",
        **fields,
    ) -> dict:
        event_id = event_id or f"e{next(self._ids):06d}"
        row = {
            "event_id": event_id,
            "anonymous_id": anonymous_id,
            "user_id": None,
            "event_type": event_type,
            "event_ts": event_ts,
            "received_at": received_at or event_ts + timedelta(seconds=1),
            "page_url": "https://shop.example/",
            "payload_hash": payload_hash or f"h-{event_id}",
            "source_object": source_object or self.source_object,
            "source_line": next(self._lines),
        }
        row.update(fields)
        self.rows.append(row)
        return row

    def copy(self, row: dict, *, received_at: datetime, payload_hash: str | None = None, **changes) -> dict:
        """Another delivery of ``row``'s event_id (a retry, or a conflicting reuse when the hash differs)."""
        dup = dict(row)
        dup.update(changes)
        dup["received_at"] = received_at
        dup["payload_hash"] = payload_hash or row["payload_hash"]
        dup["source_object"] = changes.get("source_object", f"raw/retry-{len(self.rows)}")
        dup["source_line"] = next(self._lines)
        self.rows.append(dup)
        return dup


def boundary_stream(seed: int = 7) -> Stream:
    """Every boundary of the rule, plus random visitors whose gaps cluster around the timeout."""
    rng = random.Random(seed)
    s = Stream()
    # Gaps of exactly the timeout stay; one microsecond more splits.
    s.add("v-gap", T0)
    s.add("v-gap", T0 + TIMEOUT)
    s.add("v-gap", T0 + 2 * TIMEOUT + US)
    s.add("v-gap", T0 + 3 * TIMEOUT + US)
    # Exactly 24 h from the start stays (a chain of 30-min gaps); 24 h + 1 µs starts a new session.
    for k in range(49):
        s.add("v-cap", T0 + k * TIMEOUT)
    s.add("v-cap", T0 + CAP + US)
    s.add("v-cap", T0 + CAP + US, event_id="e-cap-tie-a")  # equal timestamps ordered by event_id
    # A long chain (29-min gaps for 80 h) cut several times by the cap, measured from each session's start.
    t = T0 + timedelta(minutes=7)
    while t < T0 + timedelta(hours=80):
        s.add("v-long", t)
        t += timedelta(minutes=29) + rng.randrange(0, 60) * US
    # Equal timestamps: order by event_id decides nothing about sessions but must not split them.
    for eid in ("tie-c", "tie-a", "tie-b"):
        s.add("v-tie", T0 + HOUR, event_id=eid)
    s.add("v-tie", T0 + HOUR + TIMEOUT, event_id="tie-d")
    # Duplicates: a retry received later is dropped; a copy received earlier (validated later) wins,
    # and its event_ts (not the later copy's) decides the session; a reused id with another payload conflicts.
    original = s.add("v-dup", T0, received_at=T0 + timedelta(seconds=5))
    s.copy(original, received_at=T0 + timedelta(seconds=50))
    late_first = s.add("v-dup", T0 + 40 * MIN, received_at=T0 + 41 * MIN)
    s.copy(late_first, received_at=T0 + 20 * MIN, event_ts=T0 + 20 * MIN)
    s.copy(original, received_at=T0 + HOUR, payload_hash="other-payload")
    # Random visitors.
    gaps = [0, 1, 59, TIMEOUT // US - 1, TIMEOUT // US, TIMEOUT // US + 1, 3 * 60 * 10**6, 2 * HOUR // US]
    for v in range(25):
        t = T0 + rng.randrange(0, 6 * 60) * MIN
        for _ in range(rng.randrange(1, 12)):
            row = s.add(f"v-rand-{v:02d}", t)
            if rng.random() < 0.1:
                s.copy(row, received_at=row["received_at"] + rng.randrange(1, 600) * timedelta(seconds=1))
            t += rng.choice(gaps) * US
    return s
