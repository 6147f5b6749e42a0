"""A user bucket's sessionized state in the lake: hot history, frozen history, and how a run reads and writes them.

The bucket's state lives under ``sessionized/bucket=NNNN/`` (``core.keys.bucket_prefix``), cut by a second hash of
the visitor into ``STATE_SLICES`` slices (``slice=SS/``). Each slice is split in time at its **boundary**, a UTC
midnight: every session starting before it is **frozen** (no later event can change it: see ``pipeline.sessionize``),
every later one is **hot**. Files of a slice (``<gen>`` = the run that wrote them):

``hot-<gen>.parquet``             the hot rows, kept or dropped: EVENT_COLUMNS, ``drop_reason`` (null, ``duplicate``,
                                  ``duplicate_conflict``) and ``session_start`` (of the row's session, for a dropped
                                  copy of its kept copy's session), sorted by visitor. Read and rewritten by every run
                                  that touches the slice.
``sessions-<gen>.parquet``        the hot sessions (SESSION_COLUMNS).
``tail-<gen>.parquet``            one row per visitor with frozen history: what the rule needs from it
                                  (``TAIL_COLUMNS``: the last kept event, the last frozen session's start, the latest
                                  campaign). Read by every run that touches the slice.
``users-<gen>.parquet``           the ``users`` links (user_id, first and last seen) over the kept frozen events.
``ids-<gen>.parquet``             the frozen-id index: one 64-bit hash of (visitor, event_id) per frozen row
                                  (``ids``: whole as written by a thaw or a slice's first freeze; ``ids_added``: one
                                  file per later freeze, its ids). Read only to build a missing filter.
``bloom-<gen>.bin``               the frozen-id filter over the index (``sessionize.idfilter``: a Bloom filter in
                                  layers, under 1e-6 false positives), so a copy of an event whose first copy is
                                  frozen is still found: an hourly run reads the filters of the slices it touches and
                                  probes the window's hashes; a "maybe" reads the frozen rows, which decide exactly.
                                  Written with the index; a freeze adds its ids (a new layer when full). A slice with
                                  an index but no filter (written before the filters) gets it built from the index by
                                  the next run that touches it.
``frozen-<gen>.parquet``,         the rows and sessions frozen by run ``<gen>`` (one pair per move of the boundary,
``frozen-sessions-<gen>.parquet`` at most one a day). Written once; an hourly run reads them only when what arrived
                                  needs it (a thaw), and then writes them again as one pair.

``state.json`` (in the bucket's folder) is the bucket's pointer: the generation, each slice's boundary and files,
the object index (``objects-<gen>.parquet``: per source object, the bit masks of the slices holding its rows and
of those holding frozen rows), and the previous generation. A run writes every new file first and the pointer last,
so the state moves as a whole (a conditional write: only over the pointer the run read); a retry of the run that wrote the pointer reads the previous generation again, so a
retry recomputes exactly what the first attempt did. Files neither generation names are deleted after the pointer.
The lake's sessions table (``sessions/bucket=NNNN/slice=SS/``, ``core.keys.sessions_bucket_prefix``) is published
from the pointer: ``hot.parquet`` and one ``frozen-<gen>.parquet`` per frozen file.

**The layout before frozen history** (``slice=SS/all.parquet`` with every row, ``sessions.parquet`` in the sessions
folder, ``objects.parquet``, no pointer) is read as a *legacy* slice: all its rows are hot and all its visitors are
recomputed by the run that first touches it, which writes the slice in this layout (a lazy migration).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from clickstream.adapters.storage import ObjectChanged, ObjectStore
from clickstream.core import sql
from clickstream.core.errors import DomainError
from clickstream.core.keys import bucket_prefix, sessions_bucket_prefix
from clickstream.core.schema import EVENT_COLUMNS, USER_COLUMNS
from clickstream.sessionize.idfilter import ID_FILTER_CONTENT_TYPE
from clickstream.sessionize.rule import connect, one_row

# Slices per bucket. Part of the state's layout: changing it needs the state rebuilt (a full back-fill). At most 63:
# the object index keeps each object's slices as bits of a BIGINT.
STATE_SLICES = 16
STATE_VERSION = 2
STATE_POINTER = "state.json"
LEGACY_ALL = "all.parquet"  # the layout before frozen history
LEGACY_SESSIONS = "sessions.parquet"
LEGACY_INDEX = "objects.parquet"
PUBLISHED_HOT = "hot.parquet"
PARQUET_TYPE = "application/vnd.apache.parquet"
STATE_COLUMNS: tuple[tuple[str, str], ...] = (*EVENT_COLUMNS, ("drop_reason", "VARCHAR"))
STATE_NAMES = [name for name, _ in STATE_COLUMNS]
# A stored row: the state's columns and the start of the session that places it (hot or frozen).
ROW_COLUMNS: tuple[tuple[str, str], ...] = (*STATE_COLUMNS, ("session_start", "TIMESTAMPTZ"))
ROW_NAMES = [name for name, _ in ROW_COLUMNS]
TAIL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("anonymous_id", "VARCHAR"),
    ("last_ts", "TIMESTAMPTZ"),  # the last kept frozen event, in the rule's order (event_ts, event_id)
    ("last_event_id", "VARCHAR"),
    ("last_start", "TIMESTAMPTZ"),  # the start of the last frozen session
    ("last_campaign", "VARCHAR[]"),  # the latest (utm source, medium, campaign) among kept frozen events
)
# The ``users`` links (anonymous_id, user_id, first_seen, last_seen) over the kept frozen events of a slice.
FROZEN_USERS_COLUMNS: tuple[tuple[str, str], ...] = USER_COLUMNS
IDS_COLUMNS: tuple[tuple[str, str], ...] = (("h", "UBIGINT"),)
INDEX_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_object", "VARCHAR"),
    ("slices", "BIGINT"),
    ("frozen", "BIGINT"),
)
_LEGACY_SLICE = re.compile(r"/slice=(\d+)/" + re.escape(LEGACY_ALL) + "$")
_ORDER = {
    "rows": "anonymous_id, event_ts, event_id, source_object, source_line",
    "sessions": "anonymous_id, session_start",
}


# -- layout ------------------------------------------------------------------------------------------------------
def slice_prefix(bucket: int, slice_no: int) -> str:
    return f"{bucket_prefix(bucket)}slice={slice_no:02d}/"


def published_prefix(bucket: int, slice_no: int) -> str:
    """The slice's folder in the lake's sessions table."""
    return f"{sessions_bucket_prefix(bucket)}slice={slice_no:02d}/"


def pointer_key(bucket: int) -> str:
    return bucket_prefix(bucket) + STATE_POINTER


def slice_of(anonymous_id: str, n_buckets: int) -> int:
    """The state slice of a visitor inside its bucket: the same hash as ``core.buckets``, above the bucket digit."""
    digest = hashlib.md5(anonymous_id.encode("utf-8"), usedforsecurity=False).hexdigest()
    return (int(digest[:8], 16) // n_buckets) % STATE_SLICES


def slice_sql(column: str, n_buckets: int) -> str:
    """:func:`slice_of` as DuckDB SQL."""
    return f"((('0x' || left(md5({column}), 8))::UBIGINT // {int(n_buckets)}) % {STATE_SLICES})"


def id_hash_sql(anonymous_id: str, event_id: str) -> str:
    """The frozen-id index's key of (visitor, event_id): 64 bits of an md5 (stable across engine versions)."""
    return f"('0x' || left(md5({anonymous_id} || '\x1f' || {event_id}), 16))::UBIGINT"


def generation_name(run_id: str) -> str:
    """A run id as a file-name part (the generation of the files it writes)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


# -- the pointer --------------------------------------------------------------------------------------------------
@dataclass
class SliceFiles:
    """One slice's files in one generation (keys in the lake) and its boundary (ISO date, None: nothing frozen)."""

    boundary: str | None = None
    hot: str | None = None
    sessions: str | None = None
    tail: str | None = None
    users: str | None = None
    ids: str | None = None
    ids_added: list[str] = field(default_factory=list)  # ids of each freeze since ``ids`` was written whole
    bloom: str | None = None  # the frozen-id filter over ``ids`` and ``ids_added`` (None: build it from them)
    frozen: list[str] = field(default_factory=list)
    frozen_sessions: list[str] = field(default_factory=list)
    legacy: str | None = None  # all.parquet of the layout before frozen history

    def keys(self) -> set[str]:
        one = {self.hot, self.sessions, self.tail, self.users, self.ids, self.bloom, self.legacy}
        return {k for k in one if k} | set(self.ids_added) | set(self.frozen) | set(self.frozen_sessions)

    @property
    def id_files(self) -> list[str]:
        """The frozen-id index's files: the whole index as last written, then each later freeze's ids."""
        return ([self.ids] if self.ids else []) + self.ids_added

    @property
    def boundary_date(self) -> date | None:
        return date.fromisoformat(self.boundary) if self.boundary else None


@dataclass
class BucketState:
    """A generation of a bucket's state: what ``state.json`` names (or the legacy layout, read as one)."""

    generation: str | None = None
    slices: dict[int, SliceFiles] = field(default_factory=dict)
    index: str | None = None
    previous: BucketState | None = None

    def keys(self) -> set[str]:
        out = {self.index} if self.index else set()
        for files in self.slices.values():
            out |= files.keys()
        return out

    def to_json(self, *, with_previous: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "version": STATE_VERSION,
            "generation": self.generation,
            "index": self.index,
            "slices": {f"{s:02d}": vars(f) for s, f in sorted(self.slices.items())},
        }
        if with_previous and self.previous is not None:
            doc["previous"] = self.previous.to_json(with_previous=False)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BucketState:
        if doc.get("version") != STATE_VERSION:
            raise ValueError(f"unknown bucket state version {doc.get('version')!r}")
        return cls(
            generation=doc.get("generation"),
            slices={int(s): SliceFiles(**f) for s, f in doc.get("slices", {}).items()},
            index=doc.get("index"),
            previous=cls.from_json(doc["previous"]) if doc.get("previous") else None,
        )


def legacy_state(existing: set[str]) -> BucketState | None:
    """The layout before frozen history as a generation (None when the bucket has no such file)."""
    slices = {
        int(m.group(1)): SliceFiles(legacy=key)
        for key in existing
        if (m := _LEGACY_SLICE.search(key)) is not None
    }
    index = next((k for k in existing if k.endswith("/" + LEGACY_INDEX)), None)
    if not slices and index is None:
        return None
    return BucketState(generation=None, slices=slices, index=index)


def read_state(lake: ObjectStore, bucket: int, existing: set[str]) -> BucketState | None:
    """The bucket's current generation: its pointer, else the legacy layout, else None (a bucket never written)."""
    return read_state_tagged(lake, bucket, existing)[0]


def read_state_tagged(
    lake: ObjectStore, bucket: int, existing: set[str]
) -> tuple[BucketState | None, str | None]:
    """:func:`read_state` and the pointer's ETag as read (None: no pointer), what :func:`swap_pointer` compares."""
    if pointer_key(bucket) in existing:
        data, etag = lake.get_tagged(pointer_key(bucket))
        return BucketState.from_json(json.loads(data)), etag
    return legacy_state(existing), None


class PointerMoved(DomainError):
    """Another run replaced the bucket's pointer after this run read it: this run's generation is not published
    (its new files are named by no generation and go with the next run's clean-up) and it deletes nothing; the
    window is run again from the current generation."""

    code = "pointer_moved"


def swap_pointer(
    lake: ObjectStore, bucket: int, new: BucketState, read_etag: str | None, run_id: str
) -> None:
    """Replace the bucket's pointer with ``new`` only if it is still the one the run read (``read_etag``; None: there
    was none), a conditional write: two runs that read the same generation can never both publish, so a pointer
    only ever names files its writer's clean-up and every later one keep."""
    data = json.dumps(new.to_json(), sort_keys=True, indent=1).encode("utf-8")
    try:
        lake.put_bytes_if(pointer_key(bucket), data, read_etag, content_type="application/json")
    except ObjectChanged as exc:
        raise PointerMoved(
            f"run {run_id}: bucket {bucket}'s state moved on after this run read it (another run wrote it): "
            "nothing published, nothing deleted; run the window again"
        ) from exc


def base_state(current: BucketState | None, run_id: str) -> BucketState:
    """The generation a run starts from: the current one, or, when this run already wrote it (a retry), the one
    before it, so the retry recomputes exactly what the first attempt did."""
    if current is not None and current.generation == run_id:
        return current.previous or BucketState()
    return current or BucketState()


# -- transfers ----------------------------------------------------------------------------------------------------
def fetch(lake: ObjectStore, key: str, path: Path) -> Path:
    """One GET into a local file (state and window files are small: no multipart transfer machinery)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lake.get_bytes(key))
    return path


def store(lake: ObjectStore, path: Path, key: str, content_type: str | None = None) -> None:
    """One PUT of a local file (Parquet, or the frozen-id filter's bytes, by the key's suffix)."""
    content_type = content_type or (PARQUET_TYPE if key.endswith(".parquet") else ID_FILTER_CONTENT_TYPE)
    lake.put_bytes(key, path.read_bytes(), content_type=content_type)


def create_empty(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[tuple[str, str], ...]) -> None:
    """A typed, empty temp table ``table`` (a slice never written, a window with no file)."""
    body = ", ".join(f"{sql.identifier(name)} {typ}" for name, typ in columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({body})")


def column_refs(names: list[str], alias: str) -> str:
    """``alias."name", …``: the columns of a contract, read from one side of a join."""
    return ", ".join(f"{alias}.{sql.identifier(n)}" for n in names)


@dataclass
class ReadCounter:
    """What a run read from the state: rows and bytes by kind (``hot``, ``tail``, ``ids``, ``frozen``, …)."""

    rows: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, rows: int, size: int) -> None:
        self.rows[kind] = self.rows.get(kind, 0) + rows
        self.bytes[kind] = self.bytes.get(kind, 0) + size


def load_table(
    con: duckdb.DuckDBPyConnection,
    lake: ObjectStore,
    table: str,
    columns: tuple[tuple[str, str], ...],
    sources: list[tuple[int, str]],
    folder: Path,
    transfers: ThreadPoolExecutor,
    counter: ReadCounter | None = None,
    kind: str = "",
) -> None:
    """Temp table ``table`` (``columns`` and ``_slice``) from the files ``sources`` ((slice, key) pairs); a column a
    file lacks is null. Created empty (typed) without files."""
    body = ", ".join(f"{sql.identifier(n)} {t}" for n, t in columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({body}, _slice INTEGER)")
    if not sources:
        return
    paths = list(
        transfers.map(
            lambda ik: fetch(lake, ik[1][1], folder / table / f"{ik[0]:05d}.parquet"), enumerate(sources)
        )
    )
    for (slice_no, _), path in zip(sources, paths, strict=True):
        scan = f"read_parquet({sql.literal(path)})"
        present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        exprs = ", ".join(f"{sql.identifier(n)}::{t}" if n in present else f"NULL::{t}" for n, t in columns)
        con.execute(f"INSERT INTO {table} SELECT {exprs}, {int(slice_no)} FROM {scan}")
    if counter is not None:
        (n,) = one_row(con, f"SELECT count(*) FROM {table}")
        counter.add(kind or table, int(n), sum(p.stat().st_size for p in paths))


def load_index(
    con: duckdb.DuckDBPyConnection,
    lake: ObjectStore,
    base: BucketState,
    folder: Path,
    transfers: ThreadPoolExecutor,
    counter: ReadCounter,
) -> None:
    """Temp table ``state_index`` (source_object, slices, frozen): bit ``s`` of ``slices`` = slice ``s`` holds rows
    of the object, of ``frozen`` = its frozen part does. A generation without an index (the legacy layout before
    it had one) has it built once from every slice's row files."""
    if base.index is not None:
        load_table(
            con, lake, "state_index", INDEX_COLUMNS, [(0, base.index)], folder, transfers, counter, "index"
        )
        con.execute("UPDATE state_index SET frozen = coalesce(frozen, 0)")
        return
    columns = (("source_object", "VARCHAR"),)
    for table, kind in (("unindexed_hot", "hot"), ("unindexed_frozen", "frozen")):
        sources = [
            (s, k)
            for s, f in base.slices.items()
            for k in ([f.hot, f.legacy] if kind == "hot" else f.frozen)
            if k is not None
        ]
        load_table(con, lake, table, columns, sources, folder, transfers, counter, "index")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE state_index AS SELECT source_object, bit_or(1::BIGINT << _slice) AS slices,"
        " coalesce(bit_or(1::BIGINT << _slice) FILTER (WHERE _frozen), 0) AS frozen FROM ("
        " SELECT DISTINCT source_object, _slice, false AS _frozen FROM unindexed_hot"
        " UNION SELECT DISTINCT source_object, _slice, true FROM unindexed_frozen)"
        " WHERE source_object IS NOT NULL GROUP BY source_object"
    )


# -- writing -------------------------------------------------------------------------------------------------------
def write_parquet(
    con: duckdb.DuckDBPyConnection, query: str, path: Path, params: Any = None
) -> tuple[Path, int]:
    """``query`` as one Parquet file; returns the file and its row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({query}) TO {sql.literal(path)} {sql.PARQUET}", params)
    (n,) = one_row(con, f"SELECT count(*) FROM read_parquet({sql.literal(path)})")
    return path, int(n)


def ordered(table: str, slice_no: int, kind: str, columns: list[str]) -> str:
    """The slice's rows of ``table`` in a file's order (``kind``: rows or sessions), without ``_slice``."""
    return f"SELECT {column_refs(columns, 't')} FROM {table} t WHERE _slice = {int(slice_no)} ORDER BY {_ORDER[kind]}"


# -- totals -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StateTotals:
    """Rows the sessionizer dropped, over every bucket's state."""

    duplicates: int = 0  # cross-object duplicates (counted as duplicates)
    conflicts: int = (
        0  # reused event_ids with a different payload (counted as quarantined duplicate_conflict)
    )


def row_files(state: BucketState) -> list[str]:
    """Every file of a generation holding rows (hot, frozen, legacy)."""
    out: list[str] = []
    for files in state.slices.values():
        out += [k for k in (files.hot, files.legacy) if k] + files.frozen
    return out


def bucket_state_totals(lake: ObjectStore, n_buckets: int) -> StateTotals:
    """Totals of ``duplicate`` and ``duplicate_conflict`` rows across every row of every bucket's state."""
    with tempfile.TemporaryDirectory(prefix="sessionize-totals-") as tmp_name:
        files: list[Path] = []
        for bucket in range(n_buckets):
            current = read_state(lake, bucket, set(lake.list_keys(bucket_prefix(bucket))))
            for key in row_files(current) if current is not None else []:
                files.append(lake.download(key, Path(tmp_name) / f"{len(files):06d}.parquet"))
        if not files:
            return StateTotals()
        con = connect()
        try:
            query, params = sql.load("clickstream.sessionize", "state_totals").bind(
                {"files": sql.array([str(f) for f in files])}
            )
            duplicates, conflicts = one_row(con, query, params)
        finally:
            con.close()
    return StateTotals(duplicates=int(duplicates), conflicts=int(conflicts))
