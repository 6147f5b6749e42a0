"""Load one pipeline run into the warehouse: replace the recomputed visitors' rows in ONE transaction.

The sessionizer recomputes every activity chain the new events touch and hands over, per user bucket, all kept
events and all sessions of the affected visitors (plus their ids). Loading them means: stage the files (DuckDB reads
the Parquet; PostgreSQL gets it by COPY), delete those visitors' events, sessions and user links, insert the staged
rows, recompute their ``users`` rows, record the run, commit. Same input twice → the same tables (idempotent);
any failure before the commit → the previous state (atomic). The SQL after staging is shared by both engines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from clickstream.core import clock
from clickstream.core.schema import EVENT_COLUMNS, SESSION_COLUMN_NAMES, SESSION_COLUMNS
from clickstream.warehouse.engine import Connection

VISITOR_COLUMNS = (("anonymous_id", "VARCHAR"),)
_LOAD_LOCK_KEY = 0x636C6B6C  # "clkl": one loader at a time on PostgreSQL


@dataclass
class RunFiles:
    """Local Parquet files of one run (one per user bucket and kind)."""

    events: list[Path] = field(default_factory=list)
    sessions: list[Path] = field(default_factory=list)
    visitors: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    execution_id: str | None = None
    watermark_from: datetime | None = None
    watermark_to: datetime | None = None
    n_objects: int = 0


@dataclass(frozen=True)
class LoadStats:
    events_loaded: int
    sessions_loaded: int
    visitors_replaced: int
    affected_days: list[str]  # YYYY-MM-DD (site time zone), old and new days of the replaced sessions


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
    with conn.transaction():
        conn.lock(_LOAD_LOCK_KEY)
        n_events = conn.stage_parquet("stage_events", EVENT_COLUMNS, files.events)
        n_sessions = conn.stage_parquet("stage_sessions", SESSION_COLUMNS, files.sessions)
        conn.stage_parquet("stage_visitors", VISITOR_COLUMNS, files.visitors)
        # Visitors whose rows get replaced: those the sessionizer named, and anyone present in the staged rows.
        conn.execute("DROP TABLE IF EXISTS stage_affected")
        conn.execute(
            "CREATE TEMP TABLE stage_affected AS"
            " SELECT anonymous_id FROM stage_visitors WHERE anonymous_id IS NOT NULL"
            " UNION SELECT anonymous_id FROM stage_events"
            " UNION SELECT anonymous_id FROM stage_sessions"
        )
        n_visitors = conn.count("stage_affected")
        old_days = _days(
            conn,
            "SELECT DISTINCT session_date FROM sessions"
            " WHERE anonymous_id IN (SELECT anonymous_id FROM stage_affected)"
            " OR session_id IN (SELECT session_id FROM stage_sessions)",
        )
        _replace(conn, site_timezone)
        new_days = _days(
            conn,
            "SELECT DISTINCT session_date FROM sessions WHERE session_id IN (SELECT session_id FROM stage_sessions)",
        )
        _record_run(conn, run, n_events, n_sessions, n_visitors)
        for table in ("stage_affected", "stage_visitors", "stage_sessions", "stage_events"):
            conn.execute(f"DROP TABLE {table}")
        if before_commit is not None:
            before_commit()
    return LoadStats(
        events_loaded=n_events,
        sessions_loaded=n_sessions,
        visitors_replaced=n_visitors,
        affected_days=sorted(old_days | new_days),
    )


def _replace(conn: Connection, site_timezone: str) -> None:
    event_cols = ", ".join(name for name, _ in EVENT_COLUMNS)
    session_cols = ", ".join(SESSION_COLUMN_NAMES)
    # Also by key: an id the sessionizer moved to another visitor must not collide with its old row.
    conn.execute(
        "DELETE FROM events WHERE anonymous_id IN (SELECT anonymous_id FROM stage_affected)"
        " OR event_id IN (SELECT event_id FROM stage_events)"
    )
    conn.execute(
        "DELETE FROM sessions WHERE anonymous_id IN (SELECT anonymous_id FROM stage_affected)"
        " OR session_id IN (SELECT session_id FROM stage_sessions)"
    )
    conn.execute(f"INSERT INTO events ({event_cols}) SELECT {event_cols} FROM stage_events")
    conn.execute(
        f"INSERT INTO sessions ({session_cols}, session_date)"
        f" SELECT {session_cols}, CAST((session_start AT TIME ZONE ?) AS DATE) FROM stage_sessions",
        [site_timezone],
    )
    conn.execute("DELETE FROM users WHERE anonymous_id IN (SELECT anonymous_id FROM stage_affected)")
    # The affected visitors' events are now exactly the staged ones: read those rather than the big table.
    conn.execute(
        "INSERT INTO users (anonymous_id, user_id, first_seen, last_seen)"
        " SELECT anonymous_id, user_id, min(event_ts), max(event_ts) FROM stage_events"
        " WHERE user_id IS NOT NULL GROUP BY anonymous_id, user_id"
    )


def _record_run(conn: Connection, run: RunRecord, n_events: int, n_sessions: int, n_visitors: int) -> None:
    # loaded_at keeps the first load's time, so re-loading the same run leaves the table identical.
    conn.execute(
        "INSERT INTO pipeline_runs (run_id, execution_id, watermark_from, watermark_to, n_objects,"
        " events_loaded, sessions_loaded, visitors_replaced, loaded_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (run_id) DO UPDATE SET execution_id = excluded.execution_id,"
        " watermark_from = excluded.watermark_from, watermark_to = excluded.watermark_to,"
        " n_objects = excluded.n_objects, events_loaded = excluded.events_loaded,"
        " sessions_loaded = excluded.sessions_loaded, visitors_replaced = excluded.visitors_replaced",
        [
            run.run_id,
            run.execution_id,
            run.watermark_from,
            run.watermark_to,
            run.n_objects,
            n_events,
            n_sessions,
            n_visitors,
            clock.now(),
        ],
    )


def _days(conn: Connection, sql: str, params: Sequence[object] = ()) -> set[str]:
    out: set[str] = set()
    for (day,) in conn.query(sql, params):
        out.add(day.isoformat() if isinstance(day, date) else str(day))
    return out
