"""Right to erasure: remove one person from the warehouse, the lake and the raw zone, and keep them out.

A person is named by an ``anonymous_id`` (a browser) or a ``user_id`` (a signed-in account). The unit erased is the
visitor (anonymous_id), as everywhere in the pipeline: for a ``user_id`` that is every anonymous_id that ever
carried it (the devices the person signed in on, their anonymous browsing there included), so no session is left
half-erased and nothing needs re-sessionizing. In order:

1. **Tombstones** (``StateStore.put_tombstone``: sha256 of the id, never the id): the user_id and every one of its
   anonymous_ids, or the anonymous_id. Written first, so validation quarantines any late event as ``erased``
   while the rest is being rewritten.
2. **Warehouse** (one transaction, under the loader's lock): the visitors' ``events``, ``sessions`` and ``users``
   rows; then ``daily_kpis`` recomputed for the days their sessions belonged to.
3. **Lake** Parquet (``validated/``, the sessionizer's ``sessionized/`` and ``sessions/`` state, ``runs/`` work files):
   every object holding the visitors' rows is rewritten without them (same key, same columns); quarantine JSON
   lines whose envelope names them are dropped.
4. **Raw zone**: every object holding their records is rewritten without them. A record of the person becomes a
   record with no events and no identity (``{"schema", "request_id", "received_at", "events": []}``), so every
   other record keeps its ordinal (``source_line``) and a re-validation of the object gives the other events the
   same identity as before. Gzip objects stay gzip.

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
from clickstream.adapters.warehouse import Connection, Warehouse
from clickstream.core.ids import id_hash
from clickstream.core.keys import (
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    RUNS_PREFIX,
    SESSIONIZED_PREFIX,
    SESSIONS_PREFIX,
    VALIDATED_PREFIX,
)
from clickstream.core.observability import logger
from clickstream.core.schema import RAW_SCHEMA_VERSION
from clickstream.core.sql import literal
from clickstream.sessionize.rule import one_row
from clickstream.validate.reader import split_documents
from clickstream.warehouse.kpis import recompute_daily_kpis

Kind = Literal["anonymous_id", "user_id"]
LAKE_PARQUET_PREFIXES = (VALIDATED_PREFIX, SESSIONIZED_PREFIX, SESSIONS_PREFIX, RUNS_PREFIX)
_ERASE_LOCK_KEY = 0x636C6B6C  # the loader's lock: an erasure never interleaves with a load
_GZIP_MAGIC = b"\x1f\x8b"


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
    visitors: int = 0
    tombstones: int = 0
    warehouse: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    kpi_days: list[str] = field(default_factory=list)
    lake: dict[str, Place] = field(default_factory=dict)  # prefix -> objects rewritten, rows removed
    raw: Place = field(default_factory=Place)  # raw objects rewritten, events removed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Identity:
    """The person's visitors, and the user_id whose rows go too (user_id mode)."""

    anonymous_ids: set[str]
    user_id: str | None

    def matches(self, anonymous_id: Any, user_id: Any) -> bool:
        return (isinstance(anonymous_id, str) and anonymous_id in self.anonymous_ids) or (
            self.user_id is not None and user_id == self.user_id
        )


def forget(
    person: Person,
    *,
    state: StateStore | None,
    lake: ObjectStore | None,
    raw: ObjectStore | None,
    warehouse: Warehouse | None,
    currency: str = "USD",
) -> ErasureReport:
    """Erase ``person`` everywhere given (a ``None`` place is skipped); see the module docstring."""
    report = ErasureReport(kind=person.kind, id_hash=person.id_hash)
    with tempfile.TemporaryDirectory(prefix="clickstream-forget-") as tmp:
        work = Path(tmp)
        import duckdb

        duck = duckdb.connect()
        try:
            duck.execute("SET enable_progress_bar = false")
            lake_files = _download_parquet(lake, work / "lake") if lake is not None else {}
            raw_objects = _raw_objects(raw) if raw is not None else {}
            who = _resolve(person, duck, warehouse, lake_files, raw_objects)
            report.visitors = len(who.anonymous_ids)
            if state is not None:
                report.tombstones = _tombstone(person, who, state)
            if warehouse is not None:
                report.warehouse, report.kpi_days = _erase_warehouse(warehouse, who, currency)
            if lake is not None:
                report.lake = _erase_lake_parquet(duck, lake, lake_files, who, work / "rewritten")
                report.lake[QUARANTINE_PREFIX] = _erase_quarantine(lake, who)
            if raw is not None:
                report.raw = _erase_raw(raw, raw_objects, who)
        finally:
            duck.close()
    logger.info("person erased", extra=report.as_dict())
    return report


# -- who ------------------------------------------------------------------------------------------------------
def _resolve(
    person: Person,
    duck: Any,
    warehouse: Warehouse | None,
    lake_files: dict[str, Path],
    raw_objects: dict[str, bytes],
) -> _Identity:
    if person.kind == "anonymous_id":
        return _Identity({person.value}, None)
    user = person.value
    found: set[str] = set()
    if warehouse is not None:
        with warehouse.connect() as conn:
            for table in ("users", "events", "sessions"):
                found.update(
                    a
                    for (a,) in conn.query(
                        f"SELECT DISTINCT anonymous_id FROM {table} WHERE user_id = ?", [user]
                    )
                )
    for path in lake_files.values():
        if {"anonymous_id", "user_id"} <= _columns(duck, path):
            found.update(
                a
                for (a,) in duck.execute(
                    f"SELECT DISTINCT anonymous_id FROM read_parquet({literal(path)}) WHERE user_id = ?",
                    [user],
                ).fetchall()
                if a is not None
            )
    for data in raw_objects.values():
        for record in _records(_decode(data)):
            if (
                isinstance(record, dict)
                and record.get("user_id") == user
                and isinstance(record.get("anonymous_id"), str)
            ):
                found.add(record["anonymous_id"])
    return _Identity(found, user)


def _tombstone(person: Person, who: _Identity, state: StateStore) -> int:
    stones = {(person.kind, person.id_hash)} | {("anonymous_id", id_hash(a)) for a in who.anonymous_ids}
    for kind, digest in sorted(stones):
        state.put_tombstone(kind, digest)
    return len(stones)


# -- warehouse ------------------------------------------------------------------------------------------------
def _erase_warehouse(warehouse: Warehouse, who: _Identity, currency: str) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    with warehouse.connect() as conn:
        with conn.transaction():
            conn.lock(_ERASE_LOCK_KEY)
            where, params = _where(conn, who)
            days = sorted(
                {
                    d.isoformat()
                    for (d,) in conn.query(
                        f"SELECT DISTINCT session_date FROM sessions WHERE {where}", params
                    )
                }
            )
            for table in ("events", "sessions", "users"):
                counts[table] = int(conn.query(f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0])
                conn.execute(f"DELETE FROM {table} WHERE {where}", params)
        recompute_daily_kpis(conn, days, currency)
    return counts, days


def _where(conn: Connection, who: _Identity) -> tuple[str, list[Any]]:
    ids = sorted(who.anonymous_ids)
    parts, params = [], []
    if ids:
        parts.append(f"anonymous_id IN ({', '.join('?' for _ in ids)})")
        params.extend(ids)
    if who.user_id is not None:
        parts.append("user_id = ?")
        params.append(who.user_id)
    return (" OR ".join(parts) or "FALSE"), params


# -- lake -----------------------------------------------------------------------------------------------------
def _download_parquet(store: ObjectStore, folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for prefix in LAKE_PARQUET_PREFIXES:
        for i, key in enumerate(sorted(store.list_keys(prefix))):
            if key.endswith(".parquet"):
                files[key] = store.download(key, folder / prefix.strip("/") / f"{i:07d}.parquet")
    return files


def _columns(duck: Any, path: Path) -> set[str]:
    return {r[0] for r in duck.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(path)})").fetchall()}


def _erase_lake_parquet(
    duck: Any, store: ObjectStore, files: dict[str, Path], who: _Identity, folder: Path
) -> dict[str, Place]:
    places = {prefix: Place() for prefix in LAKE_PARQUET_PREFIXES}
    duck.execute("CREATE OR REPLACE TEMP TABLE erased_visitors (anonymous_id VARCHAR)")
    if who.anonymous_ids:
        duck.executemany("INSERT INTO erased_visitors VALUES (?)", [[a] for a in sorted(who.anonymous_ids)])
    folder.mkdir(parents=True, exist_ok=True)
    for i, (key, path) in enumerate(sorted(files.items())):
        columns = _columns(duck, path)
        if "anonymous_id" not in columns:
            continue
        cond = "anonymous_id IN (SELECT anonymous_id FROM erased_visitors)"
        params: list[Any] = []
        if who.user_id is not None and "user_id" in columns:
            cond += " OR user_id = ?"
            params.append(who.user_id)
        match = f"COALESCE({cond}, FALSE)"
        source = f"read_parquet({literal(path)})"
        (n,) = one_row(duck, f"SELECT count(*) FROM {source} WHERE {match}", params)
        if not n:
            continue
        out = folder / f"{i:07d}.parquet"
        duck.execute(
            f"COPY (SELECT * FROM {source} WHERE NOT {match}) TO {literal(out)} (FORMAT parquet, COMPRESSION zstd)",
            params,
        )
        store.upload(out, key, "application/vnd.apache.parquet")
        place = places[next(p for p in LAKE_PARQUET_PREFIXES if key.startswith(p))]
        place.objects += 1
        place.rows += int(n)
    return places


def _erase_quarantine(store: ObjectStore, who: _Identity) -> Place:
    place = Place()
    for key in sorted(store.list_keys(QUARANTINE_PREFIX)):
        lines = store.get_bytes(key).splitlines(keepends=True)
        kept = [line for line in lines if not _quarantined_for(line, who)]
        if len(kept) != len(lines):
            store.put_bytes(key, b"".join(kept), "application/x-ndjson")
            place.objects += 1
            place.rows += len(lines) - len(kept)
    return place


def _quarantined_for(line: bytes, who: _Identity) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    envelope = entry.get("envelope") if isinstance(entry, dict) else None
    return isinstance(envelope, dict) and who.matches(envelope.get("anonymous_id"), envelope.get("user_id"))


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


def _erase_raw(store: ObjectStore, objects: dict[str, bytes], who: _Identity) -> Place:
    place = Place()
    for key, data in objects.items():
        payload = _decode(data)
        removed = 0
        out_lines: list[bytes] = []
        for line in payload.split(b"\n"):
            docs = list(_documents(line))
            hits = [
                isinstance(v, dict) and who.matches(v.get("anonymous_id"), v.get("user_id")) for v, _ in docs
            ]
            if not any(hits):
                out_lines.append(line)
                continue
            removed += sum(
                len(v.get("events") or []) if isinstance(v.get("events"), list) else 1
                for (v, _), hit in zip(docs, hits, strict=True)
                if hit
            )
            # One document per line from here on: the validator counts documents, so ordinals stay the same.
            out_lines.extend(
                _placeholder(v) if hit else text for (v, text), hit in zip(docs, hits, strict=True)
            )
        if removed:
            body = b"\n".join(out_lines)
            store.put_bytes(key, gzip.compress(body, mtime=0) if data[:2] == _GZIP_MAGIC else body)
            place.objects += 1
            place.rows += removed
    return place


def _placeholder(record: dict[str, Any]) -> bytes:
    """A record that keeps its place in the object and nothing of the person: no identity, no events."""
    kept = {
        "schema": RAW_SCHEMA_VERSION,
        "request_id": record.get("request_id"),
        "received_at": record.get("received_at"),
    }
    return json.dumps({**kept, "events": []}, separators=(",", ":")).encode("utf-8")
