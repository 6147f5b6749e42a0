"""The Sessionize step: one user bucket of one run (``SessionizeInput`` -> ``SessionizeResult``).

The bucket's state lives at ``sessionized/bucket=NNNN/`` (``core.keys.bucket_prefix``):

``all.parquet``       every validated row ever seen for the bucket, kept or dropped: the EVENT_COLUMNS
                      (session_id null for dropped rows) plus ``drop_reason`` (null, ``duplicate`` or
                      ``duplicate_conflict``). This is the source of truth; it is written last.
``sessions.parquet``  the bucket's sessions (SESSION_COLUMNS).
``dropped.parquet``   the dropped rows (``core.schema.DROPPED_COLUMNS``, ``reason`` = drop_reason), so the
                      summary counts cross-object duplicates and quarantined ``duplicate_conflict`` rows without
                      reading the whole state.

A run reads its manifest, keeps the rows of its validated objects that fall in the bucket, and merges them into
the state (an exact re-delivery, the same source_object/source_line/event_id, replaces the old row, so the same
window twice changes nothing). Copies of an event_id are ranked over the whole bucket; the affected visitors are
those with a row whose event_id the window brought (the only rows whose dedupe outcome can change), and their
events are sessionized again whole by the same engine the CLI uses. Sessionization is a pure function of a
visitor's events, so after any sequence of runs the state equals one full recompute. The run's outputs,
``runs/<run_id>/bucket=NNNN/{events,sessions,visitors}.parquet``, hold the affected visitors' kept events, all
their sessions and their ids, so the warehouse replaces exactly those visitors' rows.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from clickstream.adapters.storage import ObjectStore
from clickstream.core.buckets import bucket_sql
from clickstream.core.config import Settings
from clickstream.core.keys import bucket_prefix, run_prefix
from clickstream.core.schema import EVENT_COLUMNS, SESSION_COLUMNS, VALIDATED_COLUMNS
from clickstream.pipeline.contracts import Manifest, SessionizeInput, SessionizeResult
from clickstream.pipeline.plan import manifest_key
from clickstream.sessionize.engine import DuckDBOptions, Sessionizer, SessionRules, connect, literal, quote
from clickstream.sessionize.files import cast_expr

STATE_ALL = "all.parquet"
STATE_SESSIONS = "sessions.parquet"
STATE_DROPPED = "dropped.parquet"
RUN_EVENTS = "events.parquet"
RUN_SESSIONS = "sessions.parquet"
RUN_VISITORS = "visitors.parquet"
PARQUET_TYPE = "application/vnd.apache.parquet"

STATE_COLUMNS: tuple[tuple[str, str], ...] = (*EVENT_COLUMNS, ("drop_reason", "VARCHAR"))
_EVENT_NAMES = [name for name, _ in EVENT_COLUMNS]
_VALIDATED_NAMES = [name for name, _ in VALIDATED_COLUMNS]
_REDELIVERY_KEY = ("source_object", "source_line", "event_id")


def run_bucket_prefix(run_id: str, bucket: int) -> str:
    return f"{run_prefix(run_id)}bucket={bucket:04d}/"


def _cols(names: list[str], alias: str) -> str:
    return ", ".join(f"{alias}.{quote(n)}" for n in names)


def _typed_empty(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[tuple[str, str], ...]) -> None:
    body = ", ".join(f"{quote(name)} {typ}" for name, typ in columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({body})")


def _projection(available: dict[str, str], columns: tuple[tuple[str, str], ...]) -> str:
    """``columns`` in order, cast to their types; a column the files lack is a typed NULL."""
    parts = []
    for name, typ in columns:
        if name not in available:
            parts.append(f"NULL::{typ} AS {quote(name)}")
            continue
        expr = cast_expr(name, available[name])
        parts.append(expr if " AS " in expr else f"{expr}::{typ} AS {quote(name)}")
    return ", ".join(parts)


def sessionize_bucket(
    request: SessionizeInput,
    lake: ObjectStore,
    *,
    timeout_minutes: float = 30,
    max_session_hours: float = 24,
    rules: SessionRules | None = None,
    memory_limit: str | None = None,
    workdir: Path | None = None,
) -> SessionizeResult:
    """Sessionize the bucket's share of the run's window and update the bucket's state (idempotent)."""
    manifest = Manifest.model_validate_json(lake.get_bytes(manifest_key(request.run_id)))
    keys = sorted({o.validated_key for o in manifest.objects if o.validated_key})
    result = SessionizeResult(run_id=request.run_id, bucket=request.bucket)
    if not keys:
        return result
    state_prefix = bucket_prefix(request.bucket)
    out_prefix = run_bucket_prefix(request.run_id, request.bucket)
    with tempfile.TemporaryDirectory(prefix="sessionize-", dir=workdir) as tmp_name:
        tmp = Path(tmp_name)
        files = [lake.download(key, tmp / "in" / f"{i:06d}.parquet") for i, key in enumerate(keys)]
        con = connect(DuckDBOptions(memory_limit=memory_limit, temp_directory=str(tmp / "spill")))
        try:
            scan = f"read_parquet([{', '.join(literal(p) for p in files)}], union_by_name = true)"
            available = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
            con.execute(
                f"""
                CREATE TEMP TABLE new_rows AS
                SELECT {_projection(available, VALIDATED_COLUMNS)} FROM {scan}
                WHERE {bucket_sql("anonymous_id", manifest.n_buckets)} = {int(request.bucket)}
                """
            )
            n_new = con.execute("SELECT count(*) FROM new_rows").fetchone()[0]
            if n_new == 0:
                return result

            # The state, merged with the window: a re-delivered row replaces its old copy.
            state_all = tmp / "state" / STATE_ALL
            state_sessions = tmp / "state" / STATE_SESSIONS
            if lake.exists(state_prefix + STATE_ALL):
                lake.download(state_prefix + STATE_ALL, state_all)
                con.execute(f"CREATE TEMP TABLE state AS SELECT * FROM read_parquet({literal(state_all)})")
            else:
                _typed_empty(con, "state", STATE_COLUMNS)
            if lake.exists(state_prefix + STATE_SESSIONS):
                lake.download(state_prefix + STATE_SESSIONS, state_sessions)
                con.execute(
                    f"CREATE TEMP TABLE state_sessions AS SELECT * FROM read_parquet({literal(state_sessions)})"
                )
            else:
                _typed_empty(con, "state_sessions", SESSION_COLUMNS)
            same = " AND ".join(f"s.{k} IS NOT DISTINCT FROM n.{k}" for k in _REDELIVERY_KEY)
            con.execute(
                f"""
                CREATE TEMP TABLE combined AS
                SELECT {_cols(_VALIDATED_NAMES, "s")}, s.session_id AS _old_session_id
                FROM state s ANTI JOIN new_rows n ON {same}
                UNION ALL
                SELECT * FROM (
                    SELECT DISTINCT ON ({", ".join(_REDELIVERY_KEY)}) {_cols(_VALIDATED_NAMES, "n")},
                           NULL::VARCHAR AS _old_session_id
                    FROM new_rows n
                    ORDER BY {", ".join(_REDELIVERY_KEY)}, n.received_at, n.payload_hash
                )
                """
            )
            con.execute(
                """
                CREATE TEMP TABLE affected AS
                SELECT DISTINCT anonymous_id FROM combined
                WHERE event_id IN (SELECT event_id FROM new_rows)
                """
            )

            rules = rules or SessionRules(
                timeout_minutes=timeout_minutes, max_session_hours=max_session_hours
            )
            engine = Sessionizer(con, "combined", [*_VALIDATED_NAMES, "_old_session_id"], rules)
            engine.run(visitors="affected", exclude=["_old_session_id"])

            event_cols = _cols(_EVENT_NAMES, "e")
            out = tmp / "out"
            out.mkdir()
            con.execute(
                f"COPY (SELECT {event_cols} FROM {engine.events} e ORDER BY e.anonymous_id, e.event_ts, e.event_id)"
                f" TO {literal(out / RUN_EVENTS)} (FORMAT parquet, COMPRESSION zstd)"
            )
            con.execute(
                f"COPY (SELECT * FROM {engine.sessions} ORDER BY anonymous_id, session_start)"
                f" TO {literal(out / RUN_SESSIONS)} (FORMAT parquet, COMPRESSION zstd)"
            )
            con.execute(
                f"COPY (SELECT anonymous_id FROM affected ORDER BY anonymous_id)"
                f" TO {literal(out / RUN_VISITORS)} (FORMAT parquet, COMPRESSION zstd)"
            )

            # The new state: affected visitors recomputed, everyone else's rows as they were.
            con.execute(
                f"""
                CREATE TEMP TABLE new_state AS
                SELECT {_cols(_VALIDATED_NAMES, "c")},
                       CASE WHEN v.anonymous_id IS NULL THEN c._old_session_id
                            WHEN a._rid IS NOT NULL THEN md5(a.anonymous_id || '|' || a._start::VARCHAR) END AS session_id,
                       d.drop_reason
                FROM combined c
                LEFT JOIN affected v ON c.anonymous_id = v.anonymous_id
                LEFT JOIN {engine.assign} a ON c.rowid = a._rid
                LEFT JOIN {engine.drops} d ON c.rowid = d._rid
                """
            )
            con.execute(
                f"""
                CREATE TEMP TABLE new_sessions AS
                SELECT * FROM state_sessions s ANTI JOIN affected v ON s.anonymous_id = v.anonymous_id
                UNION ALL BY NAME
                SELECT * FROM {engine.sessions}
                """
            )
            new_state_dir = tmp / "new_state"
            new_state_dir.mkdir()
            con.execute(
                "COPY (SELECT * FROM new_sessions ORDER BY anonymous_id, session_start)"
                f" TO {literal(new_state_dir / STATE_SESSIONS)} (FORMAT parquet, COMPRESSION zstd)"
            )
            con.execute(
                """COPY (SELECT event_id, anonymous_id, drop_reason AS reason, source_object, source_line, received_at
                         FROM new_state WHERE drop_reason IS NOT NULL
                         ORDER BY anonymous_id, event_id, received_at, source_object, source_line)"""
                f" TO {literal(new_state_dir / STATE_DROPPED)} (FORMAT parquet, COMPRESSION zstd)"
            )
            con.execute(
                "COPY (SELECT * FROM new_state ORDER BY anonymous_id, event_ts, event_id, source_object, source_line)"
                f" TO {literal(new_state_dir / STATE_ALL)} (FORMAT parquet, COMPRESSION zstd)"
            )

            n_visitors = con.execute("SELECT count(*) FROM affected").fetchone()[0]
            n_events = con.execute(f"SELECT count(*) FROM {engine.events}").fetchone()[0]
            n_sessions = con.execute(f"SELECT count(*) FROM {engine.sessions}").fetchone()[0]
            n_duplicates, n_conflicts = con.execute(
                "SELECT count(*) FILTER (WHERE drop_reason = 'duplicate'),"
                " count(*) FILTER (WHERE drop_reason = 'duplicate_conflict') FROM new_state"
            ).fetchone()
        finally:
            con.close()

        # Outputs first, the state's source of truth last: a retry after a partial write recomputes the same.
        for name in (RUN_EVENTS, RUN_SESSIONS, RUN_VISITORS):
            lake.upload(out / name, out_prefix + name, PARQUET_TYPE)
        for name in (STATE_SESSIONS, STATE_DROPPED, STATE_ALL):
            lake.upload(new_state_dir / name, state_prefix + name, PARQUET_TYPE)

    return result.model_copy(
        update={
            "n_new_events": n_new,
            "n_visitors": n_visitors,
            "n_events": n_events,
            "n_sessions": n_sessions,
            "n_duplicates": n_duplicates,
            "n_conflicts": n_conflicts,
            "events_key": out_prefix + RUN_EVENTS,
            "sessions_key": out_prefix + RUN_SESSIONS,
            "visitors_key": out_prefix + RUN_VISITORS,
        }
    )


def duckdb_memory_limit(function_memory_mb: int | None) -> str | None:
    """DuckDB's share of a Lambda function's memory (the rest is Python, boto3 and buffers)."""
    if not function_memory_mb:
        return None
    return f"{max(128, int(function_memory_mb * 0.6))}MB"


def run_sessionize(
    request: SessionizeInput,
    settings: Settings,
    *,
    lake: ObjectStore | None = None,
    function_memory_mb: int | None = None,
) -> SessionizeResult:
    """The step as the handler calls it: the lake bucket and the session rules from the settings."""
    if lake is None:
        from clickstream.adapters.storage import S3ObjectStore

        lake = S3ObjectStore(settings.lake_bucket)
    return sessionize_bucket(
        request, lake, rules=session_rules(settings), memory_limit=duckdb_memory_limit(function_memory_mb)
    )


def session_rules(settings: Settings) -> SessionRules:
    """The rule as the stack is configured: timeout, cap, and the optional splits (midnight in the site's zone)."""
    return SessionRules(
        timeout_minutes=settings.session_timeout_minutes,
        max_session_hours=settings.max_session_hours,
        split_at_midnight=settings.site_timezone if settings.split_at_midnight else None,
        split_on_campaign=settings.split_on_campaign,
    )


@dataclass(frozen=True)
class StateTotals:
    """Rows the sessionizer dropped, over every bucket's state."""

    duplicates: int = 0  # cross-object duplicates (counted as duplicates)
    conflicts: int = (
        0  # reused event_ids with a different payload (counted as quarantined duplicate_conflict)
    )


def bucket_state_totals(lake: ObjectStore, n_buckets: int) -> StateTotals:
    """Totals of ``duplicate`` and ``duplicate_conflict`` rows across the buckets' ``dropped.parquet``."""
    duplicates = conflicts = 0
    with tempfile.TemporaryDirectory(prefix="sessionize-totals-") as tmp_name:
        files = []
        for bucket in range(n_buckets):
            key = bucket_prefix(bucket) + STATE_DROPPED
            if lake.exists(key):
                files.append(lake.download(key, Path(tmp_name) / f"{bucket:04d}.parquet"))
        if not files:
            return StateTotals()
        con = connect()
        try:
            duplicates, conflicts = con.execute(
                "SELECT count(*) FILTER (WHERE reason = 'duplicate'),"
                " count(*) FILTER (WHERE reason = 'duplicate_conflict')"
                f" FROM read_parquet([{', '.join(literal(f) for f in files)}])"
            ).fetchone()
        finally:
            con.close()
    return StateTotals(duplicates=duplicates, conflicts=conflicts)
