"""The Sessionize step: one user bucket of one run (``SessionizeInput`` -> ``SessionizeResult``).

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

A run reads its manifest, keeps the rows of its validated objects that fall in the bucket, and reads and rewrites
only the slices those rows fall in, plus the slices the index names for the run's objects, so its cost follows what
arrived, not the bucket's whole history. **A source object is a unit**: when a window brings an object (by its
manifest entry, even one left with no valid event), the object's rows in the state become exactly the rows it brings
now. An exact re-delivery therefore changes nothing, and a re-validation that yields fewer rows (a stricter schema,
an erasure, a row now quarantined) removes the rows it no longer has, also from slices where it now has none. The
affected visitors are the ones the window brought rows for and the ones whose rows of those objects were removed
(a visitor left with no row keeps no session); their events are sessionized again whole by the same engine the CLI
uses, everyone else's rows are carried over untouched. A retried task also takes the visitors its earlier attempt
listed, so a retry after a partial state write still names every visitor the warehouse must replace. Copies of an event_id are ranked
within the visitor (a visitor's history decides its own duplicates, whatever the bucket or slice layout), so
sessionization is a pure function of a visitor's events and after any sequence of runs the state equals one full
recompute. The run's outputs, ``runs/<run_id>/bucket=NNNN/{events,sessions,visitors}.parquet``, hold the affected
visitors' kept events, all their sessions and their ids, so the warehouse replaces exactly those visitors' rows;
``result.json`` beside them is the step's answer, which the back-fill path's Load reads instead of a state payload.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from clickstream.adapters.state import StateStore
from clickstream.adapters.storage import ObjectStore
from clickstream.core.buckets import bucket_sql
from clickstream.core.config import Settings
from clickstream.core.keys import bucket_prefix, run_prefix, sessions_bucket_prefix
from clickstream.core.schema import EVENT_COLUMNS, SESSION_COLUMNS, VALIDATED_COLUMNS
from clickstream.pipeline.lease import hold_pipeline_lease
from clickstream.pipeline.manifest import Manifest, SessionizeInput, SessionizeResult
from clickstream.pipeline.plan import manifest_key
from clickstream.sessionize.files import cast_expr
from clickstream.sessionize.rule import DuckDBOptions, Sessionizer, SessionRules, connect, literal, quote

# Slices per bucket. Part of the state's layout: changing it needs the state rebuilt (a full back-fill). At most 63:
# the object index keeps each object's slices as bits of a BIGINT.
STATE_SLICES = 16
STATE_ALL = "all.parquet"
STATE_SESSIONS = "sessions.parquet"
STATE_INDEX = "objects.parquet"
RUN_EVENTS = "events.parquet"
RUN_SESSIONS = "sessions.parquet"
RUN_VISITORS = "visitors.parquet"
RUN_RESULT = "result.json"
PARQUET_TYPE = "application/vnd.apache.parquet"
PARQUET = "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
TRANSFER_THREADS = 8  # S3 transfers of one run overlap (network latency in Lambda)

STATE_COLUMNS: tuple[tuple[str, str], ...] = (*EVENT_COLUMNS, ("drop_reason", "VARCHAR"))
_EVENT_NAMES = [name for name, _ in EVENT_COLUMNS]
_VALIDATED_NAMES = [name for name, _ in VALIDATED_COLUMNS]
_STATE_NAMES = [name for name, _ in STATE_COLUMNS]
_REDELIVERY_KEY = ("source_object", "source_line", "event_id")
_ID_SEP = "\x1f"  # joins visitor and event_id into the dedupe key: never part of either


def run_bucket_prefix(run_id: str, bucket: int) -> str:
    return f"{run_prefix(run_id)}bucket={bucket:04d}/"


def run_result_key(run_id: str, bucket: int) -> str:
    """Where the Sessionize step leaves its answer for a bucket of a run."""
    return run_bucket_prefix(run_id, bucket) + RUN_RESULT


def _fetch(lake: ObjectStore, key: str, path: Path) -> Path:
    """One GET into a local file (state and window files are small: no multipart transfer machinery)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lake.get_bytes(key))
    return path


def _store(lake: ObjectStore, path: Path, key: str, content_type: str = PARQUET_TYPE) -> None:
    """One PUT of a local file."""
    lake.put_bytes(key, path.read_bytes(), content_type=content_type)


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


# One DuckDB database per process (a Lambda container's lifetime, or the local runner's), a cursor per run: opening
# a database costs more than a small run's whole work. Temp tables belong to the cursor, so runs never share rows.
_db_lock = threading.Lock()
_databases: dict[tuple[str | None, str], duckdb.DuckDBPyConnection] = {}


def _cursor(memory_limit: str | None, spill_dir: Path) -> duckdb.DuckDBPyConnection:
    key = (memory_limit, str(spill_dir))
    with _db_lock:
        db = _databases.get(key)
        if db is None:
            spill_dir.mkdir(parents=True, exist_ok=True)
            db = connect(DuckDBOptions(memory_limit=memory_limit, temp_directory=str(spill_dir)))
            _databases[key] = db
        cur = db.cursor()
    cur.execute("SET TimeZone = 'UTC'")
    return cur


def sessionize_bucket(
    request: SessionizeInput,
    lake: ObjectStore,
    *,
    timeout_minutes: float = 30,
    max_session_hours: float = 24,
    rules: SessionRules | None = None,
    memory_limit: str | None = None,
    workdir: Path | None = None,
    fence: Callable[[], None] | None = None,
) -> SessionizeResult:
    """Sessionize the bucket's share of the run's window and update the touched slices of its state (idempotent).
    ``fence`` is called just before the first write and raises to stop it (``pipeline.lease.hold_pipeline_lease``)."""
    manifest = Manifest.model_validate_json(lake.get_bytes(manifest_key(request.run_id)))
    keys = sorted({o.validated_key for o in manifest.objects if o.validated_key})
    result = SessionizeResult(run_id=request.run_id, bucket=request.bucket)
    if manifest.objects:  # an object with no valid event left may still have rows in the state to remove
        rules = rules or SessionRules(timeout_minutes=timeout_minutes, max_session_hours=max_session_hours)
        result = _sessionize(request, manifest, keys, lake, rules, memory_limit, workdir, fence)
    lake.put_bytes(
        run_result_key(request.run_id, request.bucket),
        result.model_dump_json().encode("utf-8"),
        content_type="application/json",
    )
    return result


def _sessionize(
    request: SessionizeInput,
    manifest: Manifest,
    keys: list[str],
    lake: ObjectStore,
    rules: SessionRules,
    memory_limit: str | None,
    workdir: Path | None,
    fence: Callable[[], None] | None = None,
) -> SessionizeResult:
    bucket, n_buckets = request.bucket, manifest.n_buckets
    out_prefix = run_bucket_prefix(request.run_id, bucket)
    result = SessionizeResult(run_id=request.run_id, bucket=bucket)
    with (
        tempfile.TemporaryDirectory(prefix="sessionize-", dir=workdir) as tmp_name,
        ThreadPoolExecutor(TRANSFER_THREADS) as transfers,
    ):
        tmp = Path(tmp_name)
        files = list(
            transfers.map(
                lambda ik: _fetch(lake, ik[1], tmp / "in" / f"{ik[0]:06d}.parquet"), enumerate(keys)
            )
        )
        con = _cursor(memory_limit, Path(tempfile.gettempdir()) / "sessionize-spill")
        try:
            if files:
                scan = f"read_parquet([{', '.join(literal(p) for p in files)}], union_by_name = true)"
                available = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
                con.execute(
                    f"""
                    CREATE TEMP TABLE new_rows AS
                    SELECT {_projection(available, VALIDATED_COLUMNS)} FROM {scan}
                    WHERE {bucket_sql("anonymous_id", n_buckets)} = {int(bucket)}
                    """
                )
            else:
                _typed_empty(con, "new_rows", VALIDATED_COLUMNS)
            # The objects this window brings: each one's rows in the state become exactly its rows now.
            con.execute(
                "CREATE TEMP TABLE window_objects AS SELECT DISTINCT source_object FROM ("
                " SELECT unnest($1::VARCHAR[]) AS source_object UNION ALL SELECT source_object FROM new_rows)",
                [sorted({o.source_key for o in manifest.objects})],
            )
            existing = set(lake.list_keys(bucket_prefix(bucket)))
            _load_index(con, lake, existing, bucket, tmp / "index", transfers)
            _earlier_attempt_visitors(con, lake, out_prefix, tmp / "earlier")
            touched = [
                r[0]
                for r in con.execute(
                    f"""
                    SELECT {slice_sql("anonymous_id", n_buckets)} FROM new_rows
                    UNION SELECT r.s FROM range({STATE_SLICES}) r(s), (
                        SELECT bit_or(i.slices) AS m FROM state_index i SEMI JOIN window_objects w USING (source_object)
                    ) WHERE (m >> r.s::INTEGER) & 1 = 1
                    UNION SELECT {slice_sql("anonymous_id", n_buckets)} FROM earlier
                    ORDER BY 1
                    """
                ).fetchall()
            ]
            if not touched:
                return result

            # The touched slices' state; a slice never written before (or emptied) is empty.
            existing |= set(lake.list_keys(sessions_bucket_prefix(bucket)))
            wanted = [
                (state_key(bucket, s, name), tmp / "state" / f"{s:02d}-{name}")
                for s in touched
                for name in (STATE_ALL, STATE_SESSIONS)
                if state_key(bucket, s, name) in existing
            ]
            list(transfers.map(lambda kp: _fetch(lake, *kp), wanted))
            state_files = [p for _, p in wanted if p.name.endswith(STATE_ALL)]
            session_files = [p for _, p in wanted if p.name.endswith(STATE_SESSIONS)]
            if state_files:
                con.execute(
                    f"CREATE TEMP TABLE state AS SELECT {_cols(_STATE_NAMES, 's')}"
                    f" FROM read_parquet([{', '.join(literal(p) for p in state_files)}]) s"
                )
            else:
                _typed_empty(con, "state", STATE_COLUMNS)
            if session_files:
                con.execute(
                    "CREATE TEMP TABLE state_sessions AS SELECT *"
                    f" FROM read_parquet([{', '.join(literal(p) for p in session_files)}])"
                )
            else:
                _typed_empty(con, "state_sessions", SESSION_COLUMNS)

            # Affected: the visitors the window brings rows for, those with rows of the window's objects in the
            # state (a visitor who lost rows), and those an earlier attempt of this task named.
            con.execute(
                """
                CREATE TEMP TABLE affected AS
                SELECT anonymous_id FROM new_rows
                UNION SELECT s.anonymous_id FROM state s SEMI JOIN window_objects w USING (source_object)
                UNION SELECT anonymous_id FROM earlier
                """
            )
            # Their rows: the state's, minus every row of the window's objects, plus the window's rows.
            con.execute(
                f"""
                CREATE TEMP TABLE combined AS
                SELECT *, row_number() OVER () AS _cs_row FROM (
                    SELECT {_cols(_VALIDATED_NAMES, "s")}
                    FROM state s SEMI JOIN affected v ON s.anonymous_id = v.anonymous_id
                    ANTI JOIN window_objects w ON s.source_object IS NOT DISTINCT FROM w.source_object
                    UNION ALL
                    SELECT * FROM (
                        SELECT DISTINCT ON ({", ".join(_REDELIVERY_KEY)}) {_cols(_VALIDATED_NAMES, "n")}
                        FROM new_rows n
                        ORDER BY {", ".join(_REDELIVERY_KEY)}, n.received_at, n.payload_hash
                    )
                )
                """
            )
            # The engine ranks copies by event_id; keyed with the visitor, a visitor's duplicates are its own.
            con.execute(
                f"""
                CREATE TEMP VIEW engine_input AS
                SELECT * REPLACE (anonymous_id || '{_ID_SEP}' || event_id AS event_id), event_id AS _cs_event_id
                FROM combined
                """
            )
            engine = Sessionizer(
                con, "engine_input", [*_VALIDATED_NAMES, "_cs_row", "_cs_event_id"], rules, rid="_cs_row"
            )
            engine.run()

            out = tmp / "out"
            out.mkdir()
            event_cols = ", ".join(
                "e._cs_event_id AS event_id" if n == "event_id" else f"e.{quote(n)}" for n in _EVENT_NAMES
            )
            con.execute(
                f"COPY (SELECT {event_cols} FROM {engine.events} e ORDER BY e.anonymous_id, e.event_ts, e._cs_event_id)"
                f" TO {literal(out / RUN_EVENTS)} {PARQUET}"
            )
            con.execute(
                f"COPY (SELECT * FROM {engine.sessions} ORDER BY anonymous_id, session_start)"
                f" TO {literal(out / RUN_SESSIONS)} {PARQUET}"
            )
            con.execute(
                f"COPY (SELECT anonymous_id FROM affected ORDER BY anonymous_id) TO {literal(out / RUN_VISITORS)} {PARQUET}"
            )

            # The touched slices' new state: affected visitors recomputed, everyone else's rows as they were.
            con.execute(
                f"""
                CREATE TEMP TABLE new_state AS
                SELECT *, {slice_sql("anonymous_id", n_buckets)} AS _slice FROM (
                    SELECT {_cols(_STATE_NAMES, "s")}
                    FROM state s ANTI JOIN affected v ON s.anonymous_id = v.anonymous_id
                    UNION ALL
                    SELECT {_cols(_VALIDATED_NAMES, "c")},
                           CASE WHEN a._rid IS NOT NULL
                                THEN md5(a.anonymous_id || '|' || a._start::VARCHAR) END AS session_id,
                           d.drop_reason
                    FROM combined c
                    LEFT JOIN {engine.assign} a ON c._cs_row = a._rid
                    LEFT JOIN {engine.drops} d ON c._cs_row = d._rid
                )
                """
            )
            con.execute(
                f"""
                CREATE TEMP TABLE new_sessions AS
                SELECT *, {slice_sql("anonymous_id", n_buckets)} AS _slice FROM (
                    SELECT * FROM state_sessions s ANTI JOIN affected v ON s.anonymous_id = v.anonymous_id
                    UNION ALL BY NAME
                    SELECT * FROM {engine.sessions}
                )
                """
            )
            # One COPY per kind writes every touched slice (a folder per slice), each sorted by visitor.
            staged: list[tuple[Path, str]] = []
            emptied: list[str] = []
            for name, table, order in (
                (STATE_SESSIONS, "new_sessions", "anonymous_id, session_start"),
                (STATE_ALL, "new_state", "anonymous_id, event_ts, event_id, source_object, source_line"),
            ):
                folder = tmp / "new_state" / name.split(".")[0]
                folder.parent.mkdir(parents=True, exist_ok=True)
                con.execute(
                    f"COPY (SELECT * FROM {table} ORDER BY _slice, {order}) TO {literal(folder)}"
                    " (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, PARTITION_BY (_slice),"
                    " FILENAME_PATTERN 'part{i}')"
                )
                for s in touched:
                    parts = sorted((folder / f"_slice={s}").glob("part*.parquet"))
                    if not parts:  # the slice lost its last row (its objects came again without them)
                        if state_key(bucket, s, name) in existing:
                            emptied.append(state_key(bucket, s, name))
                        continue
                    path = folder / f"{s:02d}-{name}"
                    if len(parts) == 1:
                        parts[0].rename(path)
                    else:  # a large slice written in several parts: one file, still in visitor order
                        con.execute(
                            f"COPY (SELECT * FROM read_parquet([{', '.join(literal(x) for x in parts)}])"
                            f" ORDER BY {order}) TO {literal(path)} {PARQUET}"
                        )
                    staged.append((path, state_key(bucket, s, name)))

            # The index: each object's slices as they were outside the touched ones, as the new rows are inside.
            touched_mask = sum(1 << t for t in touched)
            con.execute(
                f"""
                COPY (
                    WITH fresh AS (
                        SELECT source_object, bit_or(1::BIGINT << _slice::INTEGER) AS slices FROM new_state
                        WHERE source_object IS NOT NULL GROUP BY source_object
                    )
                    SELECT source_object, slices FROM (
                        SELECT source_object,
                               (coalesce(o.slices, 0) & ~{touched_mask}::BIGINT) | coalesce(f.slices, 0) AS slices
                        FROM state_index o FULL OUTER JOIN fresh f USING (source_object)
                    ) WHERE slices <> 0 ORDER BY source_object
                ) TO {literal(tmp / STATE_INDEX)} {PARQUET}
                """
            )

            n_new, n_visitors, n_events, n_sessions, n_duplicates, n_conflicts = con.execute(
                f"""
                SELECT (SELECT count(*) FROM new_rows), (SELECT count(*) FROM affected),
                       (SELECT count(*) FROM {engine.assign}), (SELECT count(*) FROM {engine.sessions}),
                       count(*) FILTER (WHERE drop_reason = 'duplicate'),
                       count(*) FILTER (WHERE drop_reason = 'duplicate_conflict')
                FROM new_state
                """
            ).fetchone()
        finally:
            con.close()

        # Outputs first, then the slices (an emptied slice's files removed), the index last: until it is written
        # the old index still names every slice a retry must read, and the retry takes this attempt's visitors.
        if fence is not None:
            fence()  # the execution still holds the pipeline lease, or nothing is written
        list(
            transfers.map(
                lambda name: _store(lake, out / name, out_prefix + name),
                (RUN_EVENTS, RUN_SESSIONS, RUN_VISITORS),
            )
        )
        list(transfers.map(lambda pk: _store(lake, *pk), staged))
        list(transfers.map(lake.delete, emptied))
        _store(lake, tmp / STATE_INDEX, index_key(bucket))

    return result.model_copy(
        update={
            "n_new_events": n_new,
            "n_visitors": n_visitors,
            "n_events": n_events,
            "n_sessions": n_sessions,
            "n_duplicates": n_duplicates,
            "n_conflicts": n_conflicts,
            "n_slices": len(touched),
            "events_key": out_prefix + RUN_EVENTS,
            "sessions_key": out_prefix + RUN_SESSIONS,
            "visitors_key": out_prefix + RUN_VISITORS,
        }
    )


_SLICE_IN_KEY = re.compile(r"/slice=(\d+)/" + re.escape(STATE_ALL) + "$")


def _load_index(
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
        path = _fetch(lake, index_key(bucket), folder / STATE_INDEX)
        con.execute(
            "CREATE TEMP TABLE state_index AS SELECT source_object::VARCHAR AS source_object,"
            f" slices::BIGINT AS slices FROM read_parquet({literal(path)})"
        )
        return
    slices = {int(m.group(1)): key for key in existing if (m := _SLICE_IN_KEY.search(key)) is not None}
    if not slices:
        con.execute("CREATE TEMP TABLE state_index (source_object VARCHAR, slices BIGINT)")
        return
    paths = dict(
        zip(
            slices,
            transfers.map(lambda sk: _fetch(lake, sk[1], folder / f"{sk[0]:02d}.parquet"), slices.items()),
            strict=True,
        )
    )
    parts = " UNION ".join(
        f"SELECT DISTINCT source_object, {s} AS slice FROM read_parquet({literal(p)})"
        for s, p in paths.items()
    )
    con.execute(
        "CREATE TEMP TABLE state_index AS SELECT source_object::VARCHAR AS source_object,"
        f" bit_or(1::BIGINT << slice) AS slices FROM ({parts}) WHERE source_object IS NOT NULL GROUP BY source_object"
    )


def _earlier_attempt_visitors(
    con: duckdb.DuckDBPyConnection, lake: ObjectStore, out_prefix: str, folder: Path
) -> None:
    """Temp table ``earlier``: the visitors an earlier attempt of this task named (none on a first attempt)."""
    key = out_prefix + RUN_VISITORS
    if lake.exists(key):
        path = _fetch(lake, key, folder / RUN_VISITORS)
        con.execute(
            f"CREATE TEMP TABLE earlier AS SELECT anonymous_id::VARCHAR AS anonymous_id FROM read_parquet({literal(path)})"
        )
    else:
        con.execute("CREATE TEMP TABLE earlier (anonymous_id VARCHAR)")


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
    state: StateStore | None = None,
) -> SessionizeResult:
    """The step as the handler calls it: the lake bucket and the session rules from the settings, and, when the
    request names its execution, the pipeline lease checked before the state is written."""
    if lake is None:
        from clickstream.adapters.storage import S3ObjectStore

        lake = S3ObjectStore(settings.lake_bucket)
    fence = None
    if request.execution_id is not None:
        if state is None:
            from clickstream.adapters.state import DynamoStateStore

            state = DynamoStateStore(settings.state_table)
        fence = functools.partial(hold_pipeline_lease, state, request.execution_id)
    return sessionize_bucket(
        request,
        lake,
        rules=session_rules(settings),
        memory_limit=duckdb_memory_limit(function_memory_mb),
        fence=fence,
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
    """Totals of ``duplicate`` and ``duplicate_conflict`` rows across every slice of every bucket's state."""
    with tempfile.TemporaryDirectory(prefix="sessionize-totals-") as tmp_name:
        files = []
        for bucket in range(n_buckets):
            for key in lake.list_keys(bucket_prefix(bucket)):
                if key.endswith("/" + STATE_ALL):
                    files.append(lake.download(key, Path(tmp_name) / f"{len(files):06d}.parquet"))
        if not files:
            return StateTotals()
        con = connect()
        try:
            duplicates, conflicts = con.execute(
                "SELECT count(*) FILTER (WHERE drop_reason = 'duplicate'),"
                " count(*) FILTER (WHERE drop_reason = 'duplicate_conflict')"
                f" FROM read_parquet([{', '.join(literal(f) for f in files)}])"
            ).fetchone()
        finally:
            con.close()
    return StateTotals(duplicates=duplicates, conflicts=conflicts)
