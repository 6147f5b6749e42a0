"""Load one pipeline run into the warehouse: replace the recomputed visitors' rows in ONE transaction.

The sessionizer recomputes every activity chain the new events touch and hands over, per user bucket, the affected
visitors' kept events and sessions from a session start on (``replace_from``: their frozen history before it cannot
have changed; null: their whole history), their ids, and their complete ``users`` links. Loading them means: delete
those visitors' sessions from that start on and those sessions' events (only on the UTC days they span), and their
user links, write the new rows straight into
the tables (DuckDB reads the Parquet itself; PostgreSQL gets them by binary COPY encoded by DuckDB, no staging
copy, and rebuilds a day's partition that the load mostly rewrites: that day's replaced rows are left out of the
new partition instead of deleted), write their ``users`` rows, record the run, commit. Only
``WAREHOUSE_EVENT_COLUMNS`` of each event reach the warehouse; the rest stays in the lake. Same input
twice → the same tables (idempotent); any failure before the commit → the previous state (atomic).

What is read from the Parquet files (the affected visitors, the days, the counts, the ``users`` rows, the
``session_date`` of each session) is computed by DuckDB over the files, so only the small set of affected visitors
is staged in the warehouse. An event or session id that already belongs to another visitor (a key collision the
per-visitor delete did not clear) is replaced too: DuckDB deletes by key first; PostgreSQL tries the fast path
inside a savepoint and, on a collision, deletes by key and writes again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from clickstream.adapters.warehouse import Connection, KeyConflict, parquet_source
from clickstream.core import clock, sql
from clickstream.core.observability import tracer
from clickstream.core.schema import SESSION_COLUMNS, USER_COLUMNS, WAREHOUSE_EVENT_COLUMNS
from clickstream.core.sql import literal

VISITOR_COLUMNS = (("anonymous_id", "VARCHAR"), ("replace_from", "TIMESTAMPTZ"))
SESSION_TABLE_COLUMNS = (*SESSION_COLUMNS, ("session_date", "DATE"))
_LOAD_LOCK_KEY = 0x636C6B6C  # "clkl": one loader at a time on PostgreSQL
_PACKAGE = "clickstream.warehouse"


@dataclass
class RunFiles:
    """Local Parquet files of one run (one per user bucket and kind)."""

    events: list[Path] = field(default_factory=list)
    sessions: list[Path] = field(default_factory=list)
    visitors: list[Path] = field(default_factory=list)
    users: list[Path] = field(
        default_factory=list
    )  # the visitors' complete users links (absent: from events)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    execution_id: str | None = None
    watermark_from: datetime | None = None
    watermark_to: datetime | None = None
    n_objects: int = 0
    # What the run's Sessionize tasks read and wrote (SessionizeResult, summed over the buckets).
    events_arrived: int = 0
    state_rows_read: int = 0
    state_bytes_read: int = 0
    index_rows_read: int = 0
    frozen_rows_read: int = 0
    state_rows_written: int = 0
    thawed_slices: int = 0


@dataclass(frozen=True)
class LoadStats:
    events_loaded: int
    sessions_loaded: int
    visitors_replaced: int
    affected_days: list[str]  # YYYY-MM-DD (site time zone), old and new days of the replaced sessions


@dataclass(frozen=True)
class _Source:
    """The run's rows as DuckDB SELECTs over its Parquet files (for ``conn.scan`` / ``conn.load_select``)."""

    events: str
    sessions: str  # SESSION_TABLE_COLUMNS: session_date computed in the site time zone
    users: str
    affected: str


def _source(conn: Connection, files: RunFiles, site_timezone: str) -> _Source:
    events = parquet_source(conn, WAREHOUSE_EVENT_COLUMNS, files.events)
    sessions = parquet_source(conn, SESSION_COLUMNS, files.sessions)
    visitors = parquet_source(conn, VISITOR_COLUMNS, files.visitors)
    tz = literal(site_timezone)
    users = (
        parquet_source(conn, USER_COLUMNS, files.users)
        if files.users
        else (
            "SELECT anonymous_id, user_id, min(event_ts) AS first_seen, max(event_ts) AS last_seen"
            f" FROM ({events}) WHERE user_id IS NOT NULL GROUP BY anonymous_id, user_id"
        )
    )
    return _Source(
        events=events,
        sessions=f"SELECT *, CAST(timezone({tz}, session_start) AS DATE) AS session_date FROM ({sessions})",
        users=users,
        # Visitors whose rows get replaced: those the sessionizer named, from the session start it gave (null:
        # their whole history), and anyone else present in the files (whole).
        affected=(
            f"SELECT anonymous_id, min(replace_from) AS replace_from FROM ({visitors})"
            " WHERE anonymous_id IS NOT NULL GROUP BY anonymous_id"
            f" UNION ALL SELECT anonymous_id, CAST(NULL AS TIMESTAMPTZ) FROM (SELECT anonymous_id FROM ({events})"
            f" UNION SELECT anonymous_id FROM ({sessions})"
            f" EXCEPT SELECT anonymous_id FROM ({visitors}) WHERE anonymous_id IS NOT NULL)"
        ),
    )


@tracer.capture_method(capture_response=False)
def load_run(
    conn: Connection,
    files: RunFiles,
    run: RunRecord,
    *,
    site_timezone: str = "UTC",
    before_commit: Callable[[], None] | None = None,
) -> LoadStats:
    """Replace the run's visitors in one transaction (see the module docstring).

    ``before_commit`` is called after every write and before the commit; a test passes a callable that raises to
    prove that a failure there leaves the previous state.
    """
    src = _source(conn, files, site_timezone)
    (n_events,) = conn.scan(f"SELECT count(*) FROM ({src.events})")[0]
    (n_sessions,) = conn.scan(f"SELECT count(*) FROM ({src.sessions})")[0]
    new_days = _days(conn.scan(f"SELECT DISTINCT session_date FROM ({src.sessions})"))
    with conn.transaction():
        conn.lock(_LOAD_LOCK_KEY)
        conn.create_temp("stage_affected", VISITOR_COLUMNS)
        conn.load_select("stage_affected", VISITOR_COLUMNS, src.affected)
        n_visitors = conn.count("stage_affected")
        if conn.dialect == "postgresql":
            conn.execute("ANALYZE stage_affected")  # the deletes' planner needs its size
        conn.execute(*sql.load(_PACKAGE, "stage_replaced").bind())
        old_days = _days(conn.query(*sql.load(_PACKAGE, "old_session_days").bind()))
        rebuild = _days_to_rebuild(conn, src)
        _delete_visitor_events(conn, skip=rebuild)
        conn.execute("DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM stage_replaced)")
        conn.execute("DELETE FROM users WHERE anonymous_id IN (SELECT anonymous_id FROM stage_affected)")
        old_days |= _write_rows(conn, src, rebuild)
        _record_run(conn, run, n_events, n_sessions, n_visitors)
        conn.execute("DROP TABLE stage_replaced")
        conn.execute("DROP TABLE stage_affected")
        if before_commit is not None:
            before_commit()
    return LoadStats(
        events_loaded=n_events,
        sessions_loaded=n_sessions,
        visitors_replaced=n_visitors,
        affected_days=sorted(old_days | new_days),
    )


# The stored events a load replaces: those of the replaced sessions (``stage_replaced``) of the affected visitors.
REPLACED_EVENTS = (
    "anonymous_id IN (SELECT anonymous_id FROM stage_affected)"
    " AND session_id IN (SELECT session_id FROM stage_replaced)"
)
# The others, from ``{table}`` (a subquery: the rebuilt days of events), as two disjoint branches (not in a replaced
# session; in one, but not of an affected visitor) whose EXISTS and NOT EXISTS PostgreSQL plans as hash semi- and
# anti-joins. ``NOT (REPLACED_EVENTS)`` would be a subplan per row, hashed only while the staged ids fit in
# work_mem and otherwise a scan of them per row (over ten minutes for a 1M-event reload).
KEPT_EVENTS = (
    "SELECT * FROM {table} e WHERE NOT EXISTS (SELECT 1 FROM stage_replaced r WHERE r.session_id = e.session_id)"
    " UNION ALL SELECT * FROM {table} e"
    " WHERE EXISTS (SELECT 1 FROM stage_replaced r WHERE r.session_id = e.session_id)"
    " AND NOT EXISTS (SELECT 1 FROM stage_affected a WHERE a.anonymous_id = e.anonymous_id)"
)


def _days_to_rebuild(conn: Connection, src: _Source) -> list[date]:
    """The UTC days whose events partition this load rebuilds instead of deleting from (PostgreSQL; see
    :meth:`~clickstream.adapters.warehouse.Connection.event_days_to_rebuild`).

    The replaced events of a day are estimated by the ``n_events`` of the replaced sessions that start on it: a
    session crossing midnight counts on its first day, which only moves the choice, never the result.
    """
    if conn.dialect != "postgresql":
        return []
    incoming = {
        _as_date(day): int(n)
        for day, n in conn.scan(
            f"SELECT CAST(event_ts AS DATE) AS d, count(*) FROM ({src.events}) GROUP BY d"
        )
    }
    replaced = {
        _as_date(day): int(n or 0)
        for day, n in conn.query(
            "SELECT CAST(session_start AS DATE) AS d, sum(n_events) FROM stage_replaced GROUP BY d"
        )
    }
    return conn.event_days_to_rebuild(incoming, replaced)


def _delete_visitor_events(conn: Connection, skip: Sequence[date] = ()) -> None:
    """Delete the events of the replaced sessions (``stage_replaced``), looking only at the UTC days they span.

    Every stored event lies within its session (``session_start`` .. ``session_end``: the loader writes both from the
    same files, erasure removes both), so those days hold all of the sessions' events. The days become a few
    ``event_ts`` ranges in the statement, and PostgreSQL prunes every other daily partition at plan time; a
    visitor without old sessions (a first load) needs no delete at all. Days in ``skip`` are left alone: their
    partitions are rebuilt without the replaced rows (see :func:`_days_to_rebuild`).
    """
    spans = conn.query(
        "SELECT DISTINCT CAST(session_start AS DATE), CAST(session_end AS DATE) FROM stage_replaced"
    )
    skipped = set(skip)
    days = {
        lo + timedelta(days=i)
        for lo, hi in ((_as_date(a), _as_date(b)) for a, b in spans)
        for i in range((hi - lo).days + 1)
    }
    ranges = _day_ranges([(day, day) for day in days - skipped])
    if not ranges:
        return
    where = " OR ".join("(event_ts >= ? AND event_ts < ?)" for _ in ranges)
    params = [bound for lo, hi in ranges for bound in (_utc_midnight(lo), _utc_midnight(hi))]
    conn.execute(f"DELETE FROM events WHERE ({where}) AND {REPLACED_EVENTS}", params)


def _day_ranges(spans: Sequence[tuple[date, date]]) -> list[tuple[date, date]]:
    """Inclusive (first day, last day) spans merged into half-open [first, after last) ranges, in order."""
    out: list[tuple[date, date]] = []
    for lo, hi in sorted(spans):
        end = hi + timedelta(days=1)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((lo, end))
    return out


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _insert(conn: Connection, src: _Source, rebuild: Sequence[date]) -> None:
    # events last: a rebuilt day's partition swap locks events until the commit (see load_events)
    conn.load_select("sessions", SESSION_TABLE_COLUMNS, src.sessions)
    conn.load_select("users", USER_COLUMNS, src.users)
    conn.load_events(
        WAREHOUSE_EVENT_COLUMNS, src.events, rebuild=rebuild, replaced=REPLACED_EVENTS, kept=KEPT_EVENTS
    )


def _write_rows(conn: Connection, src: _Source, rebuild: Sequence[date]) -> set[str]:
    """Insert the run's rows; returns the days of sessions of other visitors that a key collision replaced."""
    if conn.dialect == "postgresql":
        try:
            with conn.savepoint():
                _insert(conn, src, rebuild)
            return set()
        except KeyConflict:
            pass  # rolled back to the savepoint: clear the colliding keys, then write again
    days = _delete_by_key(conn, src)
    _insert(conn, src, rebuild)
    return days


def _delete_by_key(conn: Connection, src: _Source) -> set[str]:
    """Delete rows of other visitors whose event_id or session_id the run brings (ids moved between visitors)."""
    conn.create_temp("stage_keys", (("event_id", "VARCHAR"),))
    conn.load_select("stage_keys", (("event_id", "VARCHAR"),), f"SELECT event_id FROM ({src.events})")
    conn.create_temp("stage_session_keys", (("session_id", "VARCHAR"),))
    conn.load_select(
        "stage_session_keys", (("session_id", "VARCHAR"),), f"SELECT session_id FROM ({src.sessions})"
    )
    days = _days(conn.query(*sql.load(_PACKAGE, "colliding_session_days").bind()))
    conn.execute(*sql.load(_PACKAGE, "delete_colliding_events").bind())
    conn.execute(*sql.load(_PACKAGE, "delete_colliding_sessions").bind())
    conn.execute("DROP TABLE stage_keys")
    conn.execute("DROP TABLE stage_session_keys")
    return days


def _record_run(conn: Connection, run: RunRecord, n_events: int, n_sessions: int, n_visitors: int) -> None:
    params = {
        **asdict(run),
        "events_loaded": n_events,
        "sessions_loaded": n_sessions,
        "visitors_replaced": n_visitors,
        "loaded_at": clock.now(),
    }
    conn.execute(*sql.load(_PACKAGE, "record_run").bind(params))


def _days(rows: Sequence[tuple[Any, ...]]) -> set[str]:
    out: set[str] = set()
    for (day,) in rows:
        out.add(day.isoformat() if isinstance(day, date) else str(day))
    return out
