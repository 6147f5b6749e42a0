"""A user bucket's sessionized state in the lake, and how a run reads and rewrites its slices.

The bucket's state lives at ``sessionized/bucket=NNNN/`` (``core.keys.bucket_prefix``), cut by a second hash of the
visitor into ``STATE_SLICES`` slices, each in its own folder ``slice=SS/``; the slice's sessions are kept apart under
``sessions/bucket=NNNN/slice=SS/`` (``core.keys.sessions_bucket_prefix``), so the lake's sessions table reads folders
of sessions only:

``all.parquet``       every validated row ever seen for the slice's visitors, kept or dropped: the EVENT_COLUMNS
                      (session_id null for dropped rows) plus ``drop_reason`` (null, ``duplicate`` or
                      ``duplicate_conflict``), sorted by visitor. The source of truth; written last.
``sessions.parquet``  the slice's sessions (SESSION_COLUMNS).

``objects.parquet``   (in ``sessionized/bucket=NNNN/``) the object index: one row per source object with the bit mask
                      of the slices holding its rows, so a run finds every slice an object it brings again has
                      rows in. Written after the slices, so it always names at least the slices that hold rows.

The Sessionize step (``pipeline.sessionize``) reads the slices a run touches into DuckDB temp tables
(:func:`load_index`, :func:`load_slices`), and writes them back from the tables ``new_state`` and ``new_sessions``
(:func:`stage_slices`, :func:`write_index`).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from clickstream.adapters.storage import ObjectStore
from clickstream.core import sql
from clickstream.core.keys import bucket_prefix, sessions_bucket_prefix
from clickstream.core.schema import EVENT_COLUMNS, SESSION_COLUMNS
from clickstream.sessionize.rule import connect, one_row

# Slices per bucket. Part of the state's layout: changing it needs the state rebuilt (a full back-fill). At most 63:
# the object index keeps each object's slices as bits of a BIGINT.
STATE_SLICES = 16
STATE_ALL = "all.parquet"
STATE_SESSIONS = "sessions.parquet"
STATE_INDEX = "objects.parquet"
PARQUET_TYPE = "application/vnd.apache.parquet"
STATE_COLUMNS: tuple[tuple[str, str], ...] = (*EVENT_COLUMNS, ("drop_reason", "VARCHAR"))
STATE_NAMES = [name for name, _ in STATE_COLUMNS]
_SLICE_IN_KEY = re.compile(r"/slice=(\d+)/" + re.escape(STATE_ALL) + "$")
# How the new slices are ordered in their files: by visitor, then as the rule orders a visitor's events.
_ORDER = {
    STATE_SESSIONS: "anonymous_id, session_start",
    STATE_ALL: "anonymous_id, event_ts, event_id, source_object, source_line",
}


# -- layout ------------------------------------------------------------------------------------------------------
def slice_prefix(bucket: int, slice_no: int) -> str:
    return f"{bucket_prefix(bucket)}slice={slice_no:02d}/"


def state_key(bucket: int, slice_no: int, name: str) -> str:
    """Where a slice's state file lives: ``all.parquet`` under ``sessionized/``, its sessions under ``sessions/``."""
    if name == STATE_SESSIONS:
        return f"{sessions_bucket_prefix(bucket)}slice={slice_no:02d}/{name}"
    return slice_prefix(bucket, slice_no) + name


def index_key(bucket: int) -> str:
    """The bucket's object index: which slices hold rows of which source object."""
    return bucket_prefix(bucket) + STATE_INDEX


def slice_of(anonymous_id: str, n_buckets: int) -> int:
    """The state slice of a visitor inside its bucket: the same hash as ``core.buckets``, above the bucket digit."""
    digest = hashlib.md5(anonymous_id.encode("utf-8"), usedforsecurity=False).hexdigest()
    return (int(digest[:8], 16) // n_buckets) % STATE_SLICES


def slice_sql(column: str, n_buckets: int) -> str:
    """:func:`slice_of` as DuckDB SQL."""
    return f"((('0x' || left(md5({column}), 8))::UBIGINT // {int(n_buckets)}) % {STATE_SLICES})"


# -- transfers ----------------------------------------------------------------------------------------------------
def fetch(lake: ObjectStore, key: str, path: Path) -> Path:
    """One GET into a local file (state and window files are small: no multipart transfer machinery)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lake.get_bytes(key))
    return path


def store(lake: ObjectStore, path: Path, key: str, content_type: str = PARQUET_TYPE) -> None:
    """One PUT of a local file."""
    lake.put_bytes(key, path.read_bytes(), content_type=content_type)


def create_empty(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[tuple[str, str], ...]) -> None:
    """A typed, empty temp table ``table`` (a slice never written, a window with no file)."""
    body = ", ".join(f"{sql.identifier(name)} {typ}" for name, typ in columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({body})")


def column_refs(names: list[str], alias: str) -> str:
    """``alias."name", …``: the columns of a contract, read from one side of a join."""
    return ", ".join(f"{alias}.{sql.identifier(n)}" for n in names)


# -- reading -------------------------------------------------------------------------------------------------------
def load_index(
    con: duckdb.DuckDBPyConnection,
    lake: ObjectStore,
    existing: set[str],
    bucket: int,
    folder: Path,
    transfers: ThreadPoolExecutor,
) -> None:
    """Temp table ``state_index`` of the bucket: (source_object, slices), ``slices`` a bit mask of the slices
    holding rows of the object (bit ``s`` = slice ``s``), so the index has one row per object. A state written
    before the index existed has it built once from every slice's rows (written back by the run)."""
    if index_key(bucket) in existing:
        path = fetch(lake, index_key(bucket), folder / STATE_INDEX)
        con.execute(
            "CREATE TEMP TABLE state_index AS SELECT source_object::VARCHAR AS source_object,"
            f" slices::BIGINT AS slices FROM read_parquet({sql.literal(path)})"
        )
        return
    slices = {int(m.group(1)): key for key in existing if (m := _SLICE_IN_KEY.search(key)) is not None}
    if not slices:
        con.execute("CREATE TEMP TABLE state_index (source_object VARCHAR, slices BIGINT)")
        return
    paths = dict(
        zip(
            slices,
            transfers.map(lambda sk: fetch(lake, sk[1], folder / f"{sk[0]:02d}.parquet"), slices.items()),
            strict=True,
        )
    )
    parts = " UNION ".join(
        f"SELECT DISTINCT source_object, {s} AS slice FROM read_parquet({sql.literal(p)})"
        for s, p in paths.items()
    )
    con.execute(
        "CREATE TEMP TABLE state_index AS SELECT source_object::VARCHAR AS source_object,"
        f" bit_or(1::BIGINT << slice) AS slices FROM ({parts}) WHERE source_object IS NOT NULL GROUP BY source_object"
    )


def load_slices(
    con: duckdb.DuckDBPyConnection,
    lake: ObjectStore,
    existing: set[str],
    bucket: int,
    touched: list[int],
    folder: Path,
    transfers: ThreadPoolExecutor,
) -> None:
    """Temp tables ``state`` (STATE_COLUMNS) and ``state_sessions`` of the touched slices; a slice never written
    before (or emptied) is empty."""
    wanted = [
        (state_key(bucket, s, name), folder / f"{s:02d}-{name}")
        for s in touched
        for name in (STATE_ALL, STATE_SESSIONS)
        if state_key(bucket, s, name) in existing
    ]
    list(transfers.map(lambda kp: fetch(lake, *kp), wanted))
    state_files = [p for _, p in wanted if p.name.endswith(STATE_ALL)]
    session_files = [p for _, p in wanted if p.name.endswith(STATE_SESSIONS)]
    if state_files:
        con.execute(
            f"CREATE TEMP TABLE state AS SELECT {column_refs(STATE_NAMES, 's')}"
            f" FROM read_parquet([{', '.join(sql.literal(p) for p in state_files)}]) s"
        )
    else:
        create_empty(con, "state", STATE_COLUMNS)
    if session_files:
        con.execute(
            "CREATE TEMP TABLE state_sessions AS SELECT *"
            f" FROM read_parquet([{', '.join(sql.literal(p) for p in session_files)}])"
        )
    else:
        create_empty(con, "state_sessions", SESSION_COLUMNS)


# -- writing -------------------------------------------------------------------------------------------------------
@dataclass
class StagedSlices:
    """The touched slices' new files (local path → key) and the keys of slices left with no row."""

    files: list[tuple[Path, str]]
    emptied: list[str]


def stage_slices(
    con: duckdb.DuckDBPyConnection, bucket: int, touched: list[int], existing: set[str], folder: Path
) -> StagedSlices:
    """Write the temp tables ``new_sessions`` and ``new_state`` (each with its ``_slice``) as one file per touched
    slice and kind, each sorted by visitor. One COPY per kind writes every slice (a folder per slice)."""
    staged = StagedSlices(files=[], emptied=[])
    for name, table in ((STATE_SESSIONS, "new_sessions"), (STATE_ALL, "new_state")):
        order = _ORDER[name]
        parts_dir = folder / name.split(".")[0]
        parts_dir.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY (SELECT * FROM {table} ORDER BY _slice, {order}) TO {sql.literal(parts_dir)}"
            f" {sql.parquet_partitioned('_slice')}"
        )
        for s in touched:
            parts = sorted((parts_dir / f"_slice={s}").glob("part*.parquet"))
            if not parts:  # the slice lost its last row (its objects came again without them)
                if state_key(bucket, s, name) in existing:
                    staged.emptied.append(state_key(bucket, s, name))
                continue
            path = parts_dir / f"{s:02d}-{name}"
            if len(parts) == 1:
                parts[0].rename(path)
            else:  # a large slice written in several parts: one file, still in visitor order
                con.execute(
                    f"COPY (SELECT * FROM read_parquet([{', '.join(sql.literal(x) for x in parts)}])"
                    f" ORDER BY {order}) TO {sql.literal(path)} {sql.PARQUET}"
                )
            staged.files.append((path, state_key(bucket, s, name)))
    return staged


def write_index(con: duckdb.DuckDBPyConnection, touched: list[int], path: Path) -> None:
    """The new object index, from ``state_index`` and ``new_state``: each object's slices as they were outside the
    touched ones, as the new rows are inside."""
    query, params = sql.load("clickstream.sessionize", "object_index").bind(
        {"touched_mask": sum(1 << t for t in touched)}
    )
    con.execute(f"COPY ({query}) TO {sql.literal(path)} {sql.PARQUET}", params)


# -- totals -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StateTotals:
    """Rows the sessionizer dropped, over every bucket's state."""

    duplicates: int = 0  # cross-object duplicates (counted as duplicates)
    conflicts: int = (
        0  # reused event_ids with a different payload (counted as quarantined duplicate_conflict)
    )


def bucket_state_totals(lake: ObjectStore, n_buckets: int) -> StateTotals:
    """Totals of ``duplicate`` and ``duplicate_conflict`` rows across every slice of every bucket's state."""
    with tempfile.TemporaryDirectory(prefix="sessionize-totals-") as tmp_name:
        files: list[Path] = []
        for bucket in range(n_buckets):
            for key in lake.list_keys(bucket_prefix(bucket)):
                if key.endswith("/" + STATE_ALL):
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
