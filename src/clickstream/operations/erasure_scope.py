"""Which rows an erasure removes (``operations.erasure``), found before anything is removed.

A person is named by an ``anonymous_id`` (a browser or device: all of it goes) or by a ``user_id`` (an account).
For a user_id A:

* A's **devices** are the anonymous_ids that carried A's user id in any place (warehouse, lake, raw records).
* A device is **shared** when it also carried another user id anywhere (a family computer, or someone who copied
  another's cookie); otherwise it is A's **own**.
* Erased: every event of A's own devices (the browsing before A signed in included); every event carrying A's user
  id, on any device; and on a shared device, the anonymous events (no user id) of the sessions A signed into, that
  is of every session, as stored before the erasure (bucket state, warehouse), holding an event with A's user id.
* Kept: on a shared device, every event of another user, and the anonymous events of sessions A never signed into
  (including anonymous events not sessionized yet: nothing ties them to A).
* Tombstones: A's user id and each of A's own devices; never a shared device, so its other users' later events
  still validate (an event carrying A's user id is quarantined as ``erased`` by the user id's tombstone).

The rows seen of A's devices (anonymous_id, user_id, session_id, event_id) are gathered into a DuckDB table and the
rule is SQL over it (``sql/erasure_*.sql``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clickstream.adapters.warehouse import Warehouse
from clickstream.core import sql
from clickstream.core.sql import literal

SEEN_COLUMNS = "anonymous_id VARCHAR, user_id VARCHAR, session_id VARCHAR, event_id VARCHAR"
_PACKAGE = "clickstream.operations"


@dataclass
class Scope:
    """What goes: ``own`` devices whole, every row carrying ``user_id``, and on ``shared`` devices the anonymous
    events named in ``signed_in`` ((anonymous_id, event_id) of the sessions the user signed into)."""

    user_id: str | None
    own: set[str] = field(default_factory=set)
    shared: set[str] = field(default_factory=set)
    signed_in: set[tuple[str, str]] = field(default_factory=set)

    @property
    def devices(self) -> set[str]:
        return self.own | self.shared

    def matches(self, anonymous_id: Any, user_id: Any, event_id: Any = None) -> bool:
        """Whether a row (or a raw record, without an event_id) is erased."""
        if isinstance(anonymous_id, str) and anonymous_id in self.own:
            return True
        if self.user_id is not None and user_id == self.user_id:
            return True
        return (
            user_id is None
            and isinstance(anonymous_id, str)
            and isinstance(event_id, str)
            and (anonymous_id, event_id) in self.signed_in
        )

    def load_into(self, duck: Any) -> None:
        """Temp tables ``erased_devices`` (own devices) and ``erased_events`` (the signed-in pairs) in ``duck``."""
        duck.execute("CREATE OR REPLACE TEMP TABLE erased_devices (anonymous_id VARCHAR)")
        duck.execute("CREATE OR REPLACE TEMP TABLE erased_events (anonymous_id VARCHAR, event_id VARCHAR)")
        if self.own:
            duck.executemany("INSERT INTO erased_devices VALUES (?)", [[a] for a in sorted(self.own)])
        if self.signed_in:
            duck.executemany(
                "INSERT INTO erased_events VALUES (?, ?)", [list(p) for p in sorted(self.signed_in)]
            )

    def match_sql(self, columns: set[str]) -> tuple[str, list[Any]]:
        """DuckDB SQL (and its parameters) of :meth:`matches` over a relation with ``columns``, using the tables
        of :meth:`load_into`."""
        parts = ["anonymous_id IN (SELECT anonymous_id FROM erased_devices)"]
        params: list[Any] = []
        if self.user_id is not None and "user_id" in columns:
            parts.append("user_id = ?")
            params.append(self.user_id)
        if self.signed_in and {"event_id", "user_id"} <= columns:
            parts.append(
                "(user_id IS NULL AND (anonymous_id, event_id) IN (SELECT anonymous_id, event_id FROM erased_events))"
            )
        return f"COALESCE({' OR '.join(parts)}, FALSE)", params


def resolve(
    kind: str,
    value: str,
    duck: Any,
    warehouse: Warehouse | None,
    lake_files: Mapping[str, Path],
    raw_records: Iterable[Mapping[str, Any]],
) -> Scope:
    """The scope of erasing ``kind`` = ``value`` (see the module docstring) from what the places hold."""
    if kind == "anonymous_id":
        return Scope(None, own={value})
    records = [r for r in raw_records if isinstance(r.get("anonymous_id"), str)]
    devices = _devices(value, duck, warehouse, lake_files, records)
    if not devices:
        return Scope(value)
    duck.execute(f"CREATE OR REPLACE TEMP TABLE seen ({SEEN_COLUMNS})")
    _seen_in_warehouse(duck, warehouse, devices)
    _seen_in_lake(duck, lake_files, devices)
    _seen_in_raw(duck, records, devices)
    params = {"user_id": value}
    shared = {
        a for (a,) in duck.execute(*sql.load(_PACKAGE, "erasure_shared_devices").bind(params)).fetchall()
    }
    signed_in = {
        (str(a), str(e))
        for a, e in duck.execute(*sql.load(_PACKAGE, "erasure_signed_in_events").bind(params)).fetchall()
    }
    return Scope(value, own=devices - shared, shared=shared, signed_in=signed_in)


def _devices(
    user_id: str,
    duck: Any,
    warehouse: Warehouse | None,
    lake_files: Mapping[str, Path],
    records: list[Mapping[str, Any]],
) -> set[str]:
    """Every anonymous_id that carried ``user_id`` in a place."""
    found: set[str] = set()
    if warehouse is not None:
        with warehouse.connect() as conn:
            for table in ("users", "events", "sessions"):
                query = f"SELECT DISTINCT anonymous_id FROM {table} WHERE user_id = ?"
                found.update(a for (a,) in conn.query(query, [user_id]))
    for path in lake_files.values():
        if {"anonymous_id", "user_id"} <= columns(duck, path):
            query = f"SELECT DISTINCT anonymous_id FROM read_parquet({literal(path)}) WHERE user_id = ?"
            found.update(a for (a,) in duck.execute(query, [user_id]).fetchall() if a is not None)
    found.update(str(r["anonymous_id"]) for r in records if r.get("user_id") == user_id)
    return found


def columns(duck: Any, path: Path) -> set[str]:
    """The column names of a Parquet file."""
    return {r[0] for r in duck.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(path)})").fetchall()}


def _insert_seen(duck: Any, rows: Iterable[Iterable[Any]]) -> None:
    batch = [list(r) for r in rows]
    if batch:
        duck.executemany("INSERT INTO seen VALUES (?, ?, ?, ?)", batch)


def _seen_in_warehouse(duck: Any, warehouse: Warehouse | None, devices: set[str]) -> None:
    if warehouse is None:
        return
    ids = sorted(devices)
    holes = ", ".join("?" for _ in ids)
    with warehouse.connect() as conn:
        _insert_seen(
            duck,
            conn.query(
                f"SELECT anonymous_id, user_id, session_id, event_id FROM events WHERE anonymous_id IN ({holes})",
                ids,
            ),
        )
        _insert_seen(
            duck,
            conn.query(
                f"SELECT anonymous_id, user_id, NULL, NULL FROM users WHERE anonymous_id IN ({holes})", ids
            ),
        )


def _seen_in_lake(duck: Any, lake_files: Mapping[str, Path], devices: set[str]) -> None:
    duck.execute("CREATE OR REPLACE TEMP TABLE scope_devices (anonymous_id VARCHAR)")
    duck.executemany("INSERT INTO scope_devices VALUES (?)", [[a] for a in sorted(devices)])
    for path in lake_files.values():
        names = columns(duck, path)
        if not {"anonymous_id", "user_id"} <= names:
            continue
        session = "session_id" if "session_id" in names and "event_id" in names else "NULL"
        event = "event_id" if "event_id" in names else "NULL"
        duck.execute(
            f"INSERT INTO seen SELECT anonymous_id, user_id, {session}, {event} FROM read_parquet({literal(path)})"
            " WHERE anonymous_id IN (SELECT anonymous_id FROM scope_devices)"
        )


def _seen_in_raw(duck: Any, records: list[Mapping[str, Any]], devices: set[str]) -> None:
    rows: list[list[Any]] = []
    for record in records:
        if record["anonymous_id"] not in devices:
            continue
        user = record.get("user_id") if isinstance(record.get("user_id"), str) else None
        listed = record.get("events")
        events: list[Any] = listed if isinstance(listed, list) else []
        ids = [
            e.get("event_id") for e in events if isinstance(e, dict) and isinstance(e.get("event_id"), str)
        ]
        rows.extend([record["anonymous_id"], user, None, i] for i in ids or [None])
    _insert_seen(duck, rows)
