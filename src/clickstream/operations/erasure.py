"""Right to erasure: remove one person from the warehouse, the lake and the raw zone, and keep them out.

A person is named by an ``anonymous_id`` (a browser: all of it goes) or a ``user_id`` (an account). Which rows go
is decided first, from every place, by ``operations.erasure_scope``: for a user, the devices that carried only
their user id go whole (their browsing before signing in included); on a device shared with other users only the
events carrying the user's id go, and the anonymous events of the sessions they signed into. In order:

1. **Tombstones** (``StateStore.put_tombstone``: sha256 of the id, never the id): the user_id and each device that
   was the person's alone, or the anonymous_id. Written first, so validation quarantines any late event as
   ``erased`` while the rest is being rewritten. A shared device is not tombstoned: its other users' events go on.
2. **Shared devices' sessions** are computed again by the rule from what they keep
   (``operations.erasure_sessions``: from the bucket state, or from the warehouse when no lake is given).
3. **Warehouse** (one transaction, under the loader's lock): the erased ``events``, the person's ``users`` rows,
   the sessions of their own devices; a shared device's events and sessions replaced by the recomputed ones; then
   ``daily_kpis`` and ``daily_revenue`` recomputed for the days those sessions belonged to, before and after.
4. **Lake** Parquet (``validated/``, the sessionizer's ``sessionized/`` and ``sessions/`` state, ``runs/`` work files):
   every object holding erased rows is rewritten without them (same key, same columns), and a shared device's
   event and session rows in it become the recomputed ones; quarantine JSON lines whose envelope names erased rows
   are dropped.
5. **Raw zone**: every object holding erased records is rewritten without them. A record of the person becomes a
   record with no events and no identity (``{"schema", "request_id", "received_at", "events": []}``), so every
   other record keeps its ordinal (``source_line``) and a re-validation of the object gives the other events the
   same identity as before; an anonymous record of a shared device loses only the erased events. Gzip objects stay
   gzip.

Every step is idempotent: forgetting the same person twice changes nothing the second time. Old versions of raw
objects (the raw bucket is versioned) expire by the bucket's lifecycle rule.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from clickstream.adapters.state import StateStore
from clickstream.adapters.storage import ObjectStore
from clickstream.adapters.warehouse import Connection, Warehouse, parquet_source
from clickstream.core import sql
from clickstream.core.ids import id_hash
from clickstream.core.keys import (
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    RUNS_PREFIX,
    SESSIONIZED_PREFIX,
    SESSIONS_PREFIX,
    VALIDATED_PREFIX,
    bucket_prefix,
)
from clickstream.core.observability import logger
from clickstream.core.schema import RAW_SCHEMA_VERSION, SESSION_COLUMNS, WAREHOUSE_EVENT_COLUMNS
from clickstream.core.sql import literal
from clickstream.operations import erasure_sessions
from clickstream.operations.erasure_scope import Scope, resolve
from clickstream.sessionize.rule import SessionRules, one_row
from clickstream.sessionize.state import read_state, row_files
from clickstream.validate.reader import split_documents
from clickstream.warehouse.kpis import recompute_daily_kpis

Kind = Literal["anonymous_id", "user_id"]
LAKE_PARQUET_PREFIXES = (VALIDATED_PREFIX, SESSIONIZED_PREFIX, SESSIONS_PREFIX, RUNS_PREFIX)
_ERASE_LOCK_KEY = 0x636C6B6C  # the loader's lock: an erasure never interleaves with a load
_GZIP_MAGIC = b"\x1f\x8b"
_PACKAGE = "clickstream.operations"
_SESSION_TABLE_COLUMNS = (*SESSION_COLUMNS, ("session_date", "DATE"))


@dataclass(frozen=True)
class Person:
    kind: Kind
    value: str

    def __post_init__(self) -> None:
        if self.kind not in ("anonymous_id", "user_id"):
            raise ValueError(f"a person is named by anonymous_id or user_id, not {self.kind!r}")
        if not self.value:
            raise ValueError("the person's id is empty")

    @property
    def id_hash(self) -> str:
        return id_hash(self.value)


@dataclass
class Place:
    """What one place held of the person: objects (or tables) rewritten and rows removed."""

    objects: int = 0
    rows: int = 0


@dataclass
class ErasureReport:
    """Counts per place; ids appear only as hashes."""

    kind: str
    id_hash: str
    visitors: int = 0  # devices erased whole (the person's own)
    shared_devices: int = 0  # devices kept for their other users, sessionized again
    tombstones: int = 0
    # table -> rows deleted; "sessions_recomputed": the shared devices' sessions written again
    warehouse: dict[str, int] = field(default_factory=dict)
    kpi_days: list[str] = field(default_factory=list)
    lake: dict[str, Place] = field(default_factory=dict)  # prefix -> objects rewritten, rows removed
    raw: Place = field(default_factory=Place)  # raw objects rewritten, events removed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Places:
    """Where the person is erased from (a ``None`` place is skipped)."""

    state: StateStore | None
    lake: ObjectStore | None
    raw: ObjectStore | None
    warehouse: Warehouse | None


def forget(
    person: Person,
    *,
    state: StateStore | None,
    lake: ObjectStore | None,
    raw: ObjectStore | None,
    warehouse: Warehouse | None,
    currency: str = "USD",
    rules: SessionRules | None = None,
    site_timezone: str = "UTC",
) -> ErasureReport:
    """Erase ``person`` everywhere given (a ``None`` place is skipped); see the module docstring. ``rules`` and
    ``site_timezone`` are the pipeline's (a shared device's sessions are computed again by them)."""
    places = Places(state, lake, raw, warehouse)
    report = ErasureReport(kind=person.kind, id_hash=person.id_hash)
    with tempfile.TemporaryDirectory(prefix="clickstream-forget-") as tmp:
        work = Path(tmp)
        import duckdb

        duck = duckdb.connect()
        try:
            duck.execute("SET enable_progress_bar = false")
            duck.execute("SET TimeZone = 'UTC'")
            _erase(person, places, duck, work, report, (currency, rules or SessionRules(), site_timezone))
        finally:
            duck.close()
    logger.info("person erased", extra=report.as_dict())
    return report


def _erase(
    person: Person,
    places: Places,
    duck: Any,
    work: Path,
    report: ErasureReport,
    settings: tuple[str, SessionRules, str],
) -> None:
    currency, rules, site_timezone = settings
    lake_files = _download_parquet(places.lake, work / "lake") if places.lake is not None else {}
    raw_objects = _raw_objects(places.raw) if places.raw is not None else {}
    records = [r for data in raw_objects.values() for r in _records(_decode(data)) if isinstance(r, dict)]
    scope = resolve(person.kind, person.value, duck, places.warehouse, lake_files, records)
    scope.load_into(duck)
    report.visitors, report.shared_devices = len(scope.own), len(scope.shared)
    if places.state is not None:
        report.tombstones = _tombstone(person, scope, places.state)
    rows = _state_row_keys(places.lake, lake_files) if places.lake is not None else set()
    state_files = [p for k, p in lake_files.items() if k in rows]
    in_state = (
        erasure_sessions.input_from_state(duck, state_files, scope) if places.lake is not None else set()
    )
    recompute = _Recompute(duck, scope, in_state, rules, site_timezone, work / "recomputed")
    if places.warehouse is not None:
        report.warehouse, report.kpi_days = _erase_warehouse(places.warehouse, scope, recompute, currency)
    elif scope.shared:
        recompute.run(None)
    if places.lake is not None:
        report.lake = _erase_lake_parquet(duck, places.lake, lake_files, scope, work / "rewritten")
        report.lake[QUARANTINE_PREFIX] = _erase_quarantine(places.lake, scope)
    if places.raw is not None:
        report.raw = _erase_raw(places.raw, raw_objects, scope)


def _tombstone(person: Person, scope: Scope, state: StateStore) -> int:
    stones = {(person.kind, person.id_hash)} | {("anonymous_id", id_hash(a)) for a in scope.own}
    for kind, digest in sorted(stones):
        state.put_tombstone(kind, digest)
    return len(stones)


# -- the shared devices' sessions ----------------------------------------------------------------------------
@dataclass
class _Recompute:
    """Runs the rule once over the shared devices' kept rows: the bucket state's, and the warehouse's for devices
    the state does not hold (read inside the erasure's transaction, after the erased rows are gone)."""

    duck: Any
    scope: Scope
    in_state: set[str]
    rules: SessionRules
    site_timezone: str
    folder: Path
    result: erasure_sessions.Recomputed | None = None

    def run(self, conn: Connection | None) -> erasure_sessions.Recomputed:
        if self.result is None:
            if conn is not None:
                erasure_sessions.input_from_warehouse(self.duck, conn, self.scope.shared - self.in_state)
            self.result = erasure_sessions.recompute(self.duck, self.rules, self.folder, self.site_timezone)
        return self.result


def _state_row_keys(lake: ObjectStore, lake_files: dict[str, Path]) -> set[str]:
    """The keys of the files holding rows in each bucket's current generation of the state (hot, frozen, legacy):
    the state's other files (tails, frozen-id and object indexes, users links, earlier generations) hold no events."""
    buckets = {
        int(key[len(SESSIONIZED_PREFIX) :].split("/", 1)[0].removeprefix("bucket="))
        for key in lake_files
        if key.startswith(SESSIONIZED_PREFIX + "bucket=")
    }
    keys: set[str] = set()
    for bucket in sorted(buckets):
        current = read_state(lake, bucket, set(lake.list_keys(bucket_prefix(bucket))))
        keys.update(row_files(current) if current is not None else ())
    return keys


# -- warehouse ------------------------------------------------------------------------------------------------
def _erase_warehouse(
    warehouse: Warehouse, scope: Scope, recompute: _Recompute, currency: str
) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    params = {"user_id": scope.user_id}
    with warehouse.connect() as conn:
        with conn.transaction():
            conn.lock(_ERASE_LOCK_KEY)
            _stage_scope(conn, scope)
            days = _days(conn.query(*sql.load(_PACKAGE, "erasure_session_days").bind()))
            for table in ("events", "sessions", "users"):
                if table == "sessions" and scope.shared:
                    _replace_shared(conn, recompute)
                query = sql.load(_PACKAGE, f"erasure_{table}")
                wanted = {k: v for k, v in params.items() if k in query.parameters}
                counts[table] = len(conn.query(*query.bind(wanted)))
            if scope.shared:
                counts["sessions_recomputed"] = _load_recomputed(conn, recompute)
                days |= _days(conn.query(*sql.load(_PACKAGE, "erasure_session_days").bind()))
            for table in ("erased_devices", "erased_events", "recomputed_devices"):
                conn.execute(f"DROP TABLE {table}")
        recomputed = recompute_daily_kpis(conn, sorted(days), currency)
    return counts, recomputed


def _stage_scope(conn: Connection, scope: Scope) -> None:
    """The scope as temp tables of the warehouse connection (the ``erasure_*.sql`` statements read them)."""
    conn.create_temp("erased_devices", (("anonymous_id", "VARCHAR"),))
    conn.create_temp("erased_events", (("anonymous_id", "VARCHAR"), ("event_id", "VARCHAR")))
    conn.create_temp("recomputed_devices", (("anonymous_id", "VARCHAR"),))
    for device in sorted(scope.own):
        conn.execute("INSERT INTO erased_devices VALUES (?)", [device])
    for pair in sorted(scope.signed_in):
        conn.execute("INSERT INTO erased_events VALUES (?, ?)", list(pair))
    for device in sorted(scope.shared):
        conn.execute("INSERT INTO recomputed_devices VALUES (?)", [device])


def _replace_shared(conn: Connection, recompute: _Recompute) -> None:
    """Recompute the shared devices' sessions (their erased events already deleted; their stored sessions still
    there), then delete their remaining events: the recomputed ones are loaded once their sessions are gone."""
    recompute.run(conn)
    conn.execute(*sql.load(_PACKAGE, "erasure_shared_events").bind())


def _load_recomputed(conn: Connection, recompute: _Recompute) -> int:
    """Load the shared devices' recomputed sessions and events; returns the sessions loaded."""
    result = recompute.run(conn)
    sessions = parquet_source(conn, _SESSION_TABLE_COLUMNS, [result.sessions])
    conn.load_select("sessions", _SESSION_TABLE_COLUMNS, sessions)
    conn.load_events(WAREHOUSE_EVENT_COLUMNS, parquet_source(conn, WAREHOUSE_EVENT_COLUMNS, [result.events]))
    return result.n_sessions


def _days(rows: Iterable[tuple[Any, ...]]) -> set[str]:
    return {d.isoformat() if hasattr(d, "isoformat") else str(d) for (d,) in rows}


# -- lake -----------------------------------------------------------------------------------------------------
def _download_parquet(store: ObjectStore, folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for prefix in LAKE_PARQUET_PREFIXES:
        for i, key in enumerate(sorted(store.list_keys(prefix))):
            if key.endswith(".parquet"):
                files[key] = store.download(key, folder / prefix.strip("/") / f"{i:07d}.parquet")
    return files


def _recomputed_rows(names: list[str], kinds: dict[str, str], available: dict[str, set[str]]) -> str | None:
    """The SELECT of the recomputed rows a file of these columns takes for its shared devices' rows, in the
    file's column order: sessions for a sessions file, the state's rows for a state file, the kept events for a
    run's events file; None for other files (validated events, visitor lists) or when nothing was recomputed
    (``available``: the recomputed tables' columns, empty then)."""
    present = set(names)
    if not available:
        return None
    if "session_start" in present and "event_id" not in present:
        table, where = erasure_sessions.SESSIONS_TABLE, "TRUE"
    elif {"event_id", "session_id", "drop_reason"} <= present:
        table, where = erasure_sessions.STATE_TABLE, "TRUE"
    elif {"event_id", "session_id"} <= present:
        table, where = erasure_sessions.STATE_TABLE, "drop_reason IS NULL AND session_id IS NOT NULL"
    else:
        return None
    picks = ", ".join(
        f"CAST({sql.identifier(n) if n in available[table] else 'NULL'} AS {kinds[n]}) AS {sql.identifier(n)}"
        for n in names
    )
    return f"SELECT {picks} FROM {table} WHERE {where}"


def _table_columns(duck: Any, tables: Iterable[str]) -> dict[str, set[str]]:
    """The columns of those temp tables of ``duck`` that exist."""
    out: dict[str, set[str]] = {}
    for table in tables:
        rows = duck.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]
        ).fetchall()
        if rows:
            out[table] = {r[0] for r in rows}
    return out


def _erase_lake_parquet(
    duck: Any, store: ObjectStore, files: dict[str, Path], scope: Scope, folder: Path
) -> dict[str, Place]:
    places = {prefix: Place() for prefix in LAKE_PARQUET_PREFIXES}
    available = (
        _table_columns(duck, (erasure_sessions.STATE_TABLE, erasure_sessions.SESSIONS_TABLE))
        if scope.shared
        else {}
    )
    shared = ", ".join(literal(a) for a in sorted(scope.shared)) or "NULL"
    folder.mkdir(parents=True, exist_ok=True)
    for i, (key, path) in enumerate(sorted(files.items())):
        source = f"read_parquet({literal(path)})"
        described = duck.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        names, kinds = [r[0] for r in described], {r[0]: r[1] for r in described}
        if "anonymous_id" not in kinds:
            continue
        match, params = scope.match_sql(set(names))
        (n,) = one_row(duck, f"SELECT count(*) FROM {source} WHERE {match}", params)
        replacement = _recomputed_rows(names, kinds, available)
        (n_shared,) = one_row(duck, f"SELECT count(*) FROM {source} WHERE anonymous_id IN ({shared})")
        if not n and not (replacement and n_shared):
            continue
        select = f"SELECT * FROM {source} WHERE NOT {match}"
        if replacement and n_shared:
            here = f"(SELECT DISTINCT anonymous_id FROM {source} WHERE anonymous_id IN ({shared}))"
            select = (
                f"SELECT * FROM ({select}) WHERE anonymous_id IS NULL OR anonymous_id NOT IN ({shared})"
                f" UNION ALL SELECT * FROM ({replacement}) WHERE anonymous_id IN {here}"
            )
            order = (
                "event_ts" if "event_ts" in kinds else "session_start" if "session_start" in kinds else None
            )
            select += f" ORDER BY anonymous_id, {order}" if order else ""
        out = folder / f"{i:07d}.parquet"
        duck.execute(f"COPY ({select}) TO {literal(out)} (FORMAT parquet, COMPRESSION zstd)", params)
        store.upload(out, key, "application/vnd.apache.parquet")
        place = places[next(p for p in LAKE_PARQUET_PREFIXES if key.startswith(p))]
        place.objects += 1
        place.rows += int(n)
    return places


def _erase_quarantine(store: ObjectStore, scope: Scope) -> Place:
    place = Place()
    for key in sorted(store.list_keys(QUARANTINE_PREFIX)):
        lines = store.get_bytes(key).splitlines(keepends=True)
        kept = [line for line in lines if not _quarantined_for(line, scope)]
        if len(kept) != len(lines):
            store.put_bytes(key, b"".join(kept), "application/x-ndjson")
            place.objects += 1
            place.rows += len(lines) - len(kept)
    return place


def _quarantined_for(line: bytes, scope: Scope) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    envelope = entry.get("envelope") if isinstance(entry, dict) else None
    if not isinstance(envelope, dict):
        return False
    return scope.matches(envelope.get("anonymous_id"), envelope.get("user_id"), entry.get("event_id"))


# -- raw ------------------------------------------------------------------------------------------------------
def _raw_objects(store: ObjectStore) -> dict[str, bytes]:
    return {key: store.get_bytes(key) for key in sorted(store.list_keys(RAW_PREFIX))}


def _decode(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == _GZIP_MAGIC else data


def _documents(line: bytes) -> Iterator[tuple[Any, bytes]]:
    """(value, bytes) of each JSON document of a raw line (records can be glued ``}{``); None for a non-JSON tail.
    The bytes are the line's own, invalid UTF-8 included, so a line written back is unchanged."""
    for value, text, _ in split_documents(line, errors="surrogateescape"):
        yield value, text.encode("utf-8", errors="surrogateescape")


def _records(payload: bytes) -> Iterable[Any]:
    for line in payload.split(b"\n"):
        for value, _ in _documents(line):
            yield value


def _erase_raw(store: ObjectStore, objects: dict[str, bytes], scope: Scope) -> Place:
    place = Place()
    for key, data in objects.items():
        payload = _decode(data)
        removed = 0
        out_lines: list[bytes] = []
        for line in payload.split(b"\n"):
            docs = [(value, text, _rewrite_record(value, scope)) for value, text in _documents(line)]
            if not any(new is not None for _, _, new in docs):
                out_lines.append(line)
                continue
            removed += sum(new[1] for _, _, new in docs if new is not None)
            # One document per line from here on: the validator counts documents, so ordinals stay the same.
            out_lines.extend(text if new is None else new[0] for _, text, new in docs)
        if removed:
            body = b"\n".join(out_lines)
            store.put_bytes(key, gzip.compress(body, mtime=0) if data[:2] == _GZIP_MAGIC else body)
            place.objects += 1
            place.rows += removed
    return place


def _rewrite_record(record: Any, scope: Scope) -> tuple[bytes, int] | None:
    """(the record's new bytes, events removed) when the erasure changes it, else None: a record of the person
    becomes a placeholder; an anonymous record of a shared device loses the erased events only."""
    if not isinstance(record, dict):
        return None
    events = record.get("events")
    if scope.matches(record.get("anonymous_id"), record.get("user_id")):
        return _placeholder(record), len(events) if isinstance(events, list) else 1
    if not isinstance(events, list) or not scope.signed_in or record.get("user_id") is not None:
        return None
    kept = [
        e
        for e in events
        if not (isinstance(e, dict) and scope.matches(record.get("anonymous_id"), None, e.get("event_id")))
    ]
    if len(kept) == len(events):
        return None
    return json.dumps({**record, "events": kept}, separators=(",", ":")).encode("utf-8"), len(events) - len(
        kept
    )


def _placeholder(record: dict[str, Any]) -> bytes:
    """A record that keeps its place in the object and nothing of the person: no identity, no events."""
    kept = {
        "schema": RAW_SCHEMA_VERSION,
        "request_id": record.get("request_id"),
        "received_at": record.get("received_at"),
    }
    return json.dumps({**kept, "events": []}, separators=(",", ":")).encode("utf-8")
