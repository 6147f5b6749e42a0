"""The sessions of shared devices after an erasure: their remaining events sessionized again by the rule.

When an erasure takes some events of a device that other users keep (``operations.erasure_scope``), the device's
sessions change: a session loses events, its user_id may become the other user's, a gap can split it. Its
remaining events go through the same rule as the pipeline's (``sessionize.rule.Sessionizer``, event ids ranked
within the visitor, ``session_id`` = md5 of visitor and start), so the warehouse and the lake stay what a full
recompute of what is left would give. The input is, in order of preference:

* the bucket state's rows of those devices (every validated column, dropped copies included): exact;
* without the lake (``forget --warehouse-only``), the warehouse's events of those devices. The warehouse keeps no
  request attributes (channel, UTM, device, referrer, bot and internal flags), so each event takes them from the
  session it belonged to: a recomputed session gets those of the stored session its first event was in.

The result is DuckDB temp tables on the erasure's connection, ``recomputed_state`` (validated columns,
``session_id``, ``drop_reason``) and ``recomputed_sessions`` (SESSION_COLUMNS), and the two Parquet files the
warehouse loads (its event columns, its session columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickstream.adapters.warehouse import Connection
from clickstream.core import sql
from clickstream.core.schema import SESSION_COLUMNS, VALIDATED_COLUMNS, WAREHOUSE_EVENT_COLUMNS
from clickstream.core.sql import identifier, literal
from clickstream.operations.erasure_scope import Scope
from clickstream.sessionize.rule import Sessionizer, SessionRules, session_id_sql

STATE_TABLE = "recomputed_state"
SESSIONS_TABLE = "recomputed_sessions"
_VALIDATED_NAMES = [name for name, _ in VALIDATED_COLUMNS]
_TYPES = dict(VALIDATED_COLUMNS)
_ID_SEP = "\x1f"  # joins visitor and event_id into the rule's dedupe key (as the Sessionize step does)
# What the warehouse's events lack, taken from the stored session of each event (warehouse column -> event column).
_BORROWED = (
    ("referrer", "page_referrer"),
    ("channel", "channel"),
    ("utm_source", "utm_source"),
    ("utm_medium", "utm_medium"),
    ("utm_campaign", "utm_campaign"),
    ("utm_term", "utm_term"),
    ("utm_content", "utm_content"),
    ("device_type", "device_type"),
    ("browser", "browser"),
    ("os", "os"),
    ("is_bot", "is_bot"),
    ("is_internal", "is_internal"),
)


@dataclass(frozen=True)
class Recomputed:
    """The shared devices' rows after the rule ran again: Parquet files for the warehouse and their counts."""

    events: Path  # WAREHOUSE_EVENT_COLUMNS of the kept events
    sessions: Path  # SESSION_COLUMNS
    n_events: int
    n_sessions: int


def _create_input(duck: Any, *, replace: bool) -> None:
    cols = ", ".join(f"{identifier(n)} {t}" for n, t in VALIDATED_COLUMNS)
    create = "CREATE OR REPLACE TEMP TABLE" if replace else "CREATE TEMP TABLE IF NOT EXISTS"
    duck.execute(f"{create} recompute_input ({cols})")


def input_from_state(duck: Any, state_files: list[Path], scope: Scope) -> set[str]:
    """``recompute_input``: the bucket state's rows of the shared devices that the erasure keeps. Returns the
    devices found there (the erasure's tables of :meth:`Scope.load_into` must exist)."""
    _create_input(duck, replace=True)
    if not state_files or not scope.shared:
        return set()
    source = f"read_parquet([{', '.join(literal(p) for p in state_files)}], union_by_name = true)"
    present = {r[0] for r in duck.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    match, params = scope.match_sql(present)
    picks = ", ".join(identifier(n) if n in present else f"NULL::{_TYPES[n]}" for n in _VALIDATED_NAMES)
    shared = ", ".join(literal(a) for a in sorted(scope.shared))
    duck.execute(
        f"INSERT INTO recompute_input SELECT {picks} FROM {source}"
        f" WHERE anonymous_id IN ({shared}) AND NOT {match}",
        params,
    )
    return {a for (a,) in duck.execute("SELECT DISTINCT anonymous_id FROM recompute_input").fetchall()}


def input_from_warehouse(duck: Any, conn: Connection, devices: set[str]) -> None:
    """Append to ``recompute_input`` the warehouse's events of ``devices`` (the erased ones already deleted), each
    with the request attributes of its stored session."""
    _create_input(duck, replace=False)
    if not devices:
        return
    own = [name for name, _ in WAREHOUSE_EVENT_COLUMNS if name != "session_id"]
    select = ", ".join([*(f"e.{n}" for n in own), *(f"s.{w}" for w, _ in _BORROWED)])
    ids = sorted(devices)
    rows = conn.query(
        f"SELECT {select} FROM events e JOIN sessions s ON s.session_id = e.session_id"
        f" AND s.anonymous_id = e.anonymous_id WHERE e.anonymous_id IN ({', '.join('?' for _ in ids)})",
        ids,
    )
    if rows:
        names = ", ".join(identifier(n) for n in [*own, *(c for _, c in _BORROWED)])
        holes = ", ".join("?" for _ in range(len(own) + len(_BORROWED)))
        duck.executemany(f"INSERT INTO recompute_input ({names}) VALUES ({holes})", [list(r) for r in rows])


def recompute(duck: Any, rules: SessionRules, folder: Path, site_timezone: str) -> Recomputed:
    """Run the rule over ``recompute_input``: tables ``recomputed_state`` / ``recomputed_sessions`` and the
    warehouse's files (sessions with their ``session_date`` in ``site_timezone``)."""
    duck.execute(
        "CREATE OR REPLACE TEMP TABLE recompute_rows AS"
        " SELECT *, row_number() OVER () AS _cs_row FROM recompute_input"
    )
    duck.execute(
        "CREATE OR REPLACE TEMP VIEW recompute_engine AS SELECT * REPLACE"
        f" (anonymous_id || {literal(_ID_SEP)} || event_id AS event_id), event_id AS _cs_event_id"
        " FROM recompute_rows"
    )
    names = [*_VALIDATED_NAMES, "_cs_row", "_cs_event_id"]
    engine = Sessionizer(duck, "recompute_engine", names, rules, prefix="_re", rid="_cs_row")
    engine.run()
    validated = ", ".join(f"r.{identifier(n)}" for n in _VALIDATED_NAMES)
    duck.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {STATE_TABLE} AS
        SELECT {validated},
               CASE WHEN a._rid IS NOT NULL THEN {session_id_sql("a.anonymous_id", "a._start")} END AS session_id,
               d.drop_reason
        FROM recompute_rows r
        LEFT JOIN {engine.assign} a ON r._cs_row = a._rid
        LEFT JOIN {engine.drops} d ON r._cs_row = d._rid
        """
    )
    duck.execute(f"CREATE OR REPLACE TEMP TABLE {SESSIONS_TABLE} AS SELECT * FROM {engine.sessions}")
    folder.mkdir(parents=True, exist_ok=True)
    events, sessions = folder / "events.parquet", folder / "sessions.parquet"
    kept = ", ".join(identifier(n) for n, _ in WAREHOUSE_EVENT_COLUMNS)
    duck.execute(
        f"COPY (SELECT {kept} FROM {STATE_TABLE} WHERE drop_reason IS NULL AND session_id IS NOT NULL"
        f" ORDER BY anonymous_id, event_ts, event_id) TO {literal(events)} {sql.PARQUET}"
    )
    session_cols = ", ".join(identifier(n) for n, _ in SESSION_COLUMNS)
    duck.execute(
        f"COPY (SELECT {session_cols}, CAST(timezone({literal(site_timezone)}, session_start) AS DATE)"
        f" AS session_date FROM {SESSIONS_TABLE} ORDER BY anonymous_id, session_start)"
        f" TO {literal(sessions)} {sql.PARQUET}"
    )
    (n_events,) = duck.execute(f"SELECT count(*) FROM read_parquet({literal(events)})").fetchone()
    (n_sessions,) = duck.execute(f"SELECT count(*) FROM {SESSIONS_TABLE}").fetchone()
    return Recomputed(events, sessions, int(n_events), int(n_sessions))
