"""The Sessionize step: one user bucket of one run (``SessionizeInput`` -> ``SessionizeResult``).

A run reads its manifest, keeps the rows of its validated objects that fall in the bucket, and reads and rewrites
only the state slices (``sessionize.state``) those rows fall in, plus the slices the object index names for the run's
objects, so its cost follows what arrived, not the bucket's whole history. **A source object is a unit**: when a
window brings an object (by its manifest entry, even one left with no valid event), the object's rows in the state
become exactly the rows it brings now. An exact re-delivery therefore changes nothing, and a re-validation that
yields fewer rows (a stricter schema, an erasure, a row now quarantined) removes the rows it no longer has, also from
slices where it now has none. The affected visitors are the ones the window brought rows for and the ones whose rows
of those objects were removed (a visitor left with no row keeps no session); their events are sessionized again
whole by the same rule the CLI uses (``sessionize.rule``), everyone else's rows are carried over untouched. A retried
task also takes the visitors its earlier attempt listed, so a retry after a partial state write still names every
visitor the warehouse must replace. Copies of an event_id are ranked within the visitor (a visitor's history decides
its own duplicates, whatever the bucket or slice layout), so sessionization is a pure function of a visitor's events
and after any sequence of runs the state equals one full recompute.

The run's outputs, ``runs/<run_id>/bucket=NNNN/{events,sessions,visitors}.parquet``, hold the affected visitors'
kept events, all their sessions and their ids, so the warehouse replaces exactly those visitors' rows; ``result.json``
beside them is the step's answer, which the back-fill path's Load reads instead of a state payload.

The work is done in named phases over one DuckDB cursor: read the window, find the touched slices, load their
state, recompute the affected visitors, stage the outputs and the new slices, write.
"""

from __future__ import annotations

import functools
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from clickstream.adapters.factory import Adapters, adapters_for
from clickstream.adapters.storage import ObjectStore
from clickstream.core import sql
from clickstream.core.buckets import bucket_sql
from clickstream.core.config import Settings
from clickstream.core.keys import bucket_prefix, sessions_bucket_prefix
from clickstream.core.observability import tracer
from clickstream.core.schema import EVENT_COLUMNS, VALIDATED_COLUMNS
from clickstream.pipeline.lease import hold_pipeline_lease
from clickstream.pipeline.manifest import (
    RUN_EVENTS,
    RUN_SESSIONS,
    RUN_VISITORS,
    Contract,
    Manifest,
    SessionizeResult,
    read_manifest,
    run_bucket_prefix,
    run_result_key,
)
from clickstream.sessionize import state
from clickstream.sessionize.files import cast_expr
from clickstream.sessionize.rule import DuckDBOptions, Sessionizer, SessionRules, connect, one_row

TRANSFER_THREADS = 8  # S3 transfers of one run overlap (network latency in Lambda)
_EVENT_NAMES = [name for name, _ in EVENT_COLUMNS]
_VALIDATED_NAMES = [name for name, _ in VALIDATED_COLUMNS]
_REDELIVERY_KEY = ("source_object", "source_line", "event_id")
_ID_SEP = "\x1f"  # joins visitor and event_id into the dedupe key: never part of either


# -- contract: SessionizeInput -> SessionizeResult (in pipeline.manifest: Load receives it) ----------------------
class SessionizeInput(Contract):
    run_id: str
    bucket: int
    # The execution that runs the step (the state machine passes Plan's): when given, the step checks that it still
    # holds the pipeline lease before it writes the bucket state (``pipeline.lease.hold_pipeline_lease``).
    execution_id: str | None = None


def run_sessionize(
    request: SessionizeInput,
    settings: Settings,
    adapters: Adapters | None = None,
    *,
    function_memory_mb: int | None = None,
) -> SessionizeResult:
    """The step as the handler calls it: the lake bucket and the session rules from the settings, and, when the
    request names its execution, the pipeline lease checked before the state is written."""
    adapters = adapters or adapters_for(settings)
    fence = None
    if request.execution_id is not None:
        fence = functools.partial(hold_pipeline_lease, adapters.state, request.execution_id)
    return sessionize_bucket(
        request,
        adapters.lake,
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


def duckdb_memory_limit(function_memory_mb: int | None) -> str | None:
    """DuckDB's share of a Lambda function's memory (the rest is Python, boto3 and buffers)."""
    if not function_memory_mb:
        return None
    return f"{max(128, int(function_memory_mb * 0.6))}MB"


@tracer.capture_method(capture_response=False)
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
    manifest = read_manifest(lake, request.run_id)
    result = SessionizeResult(run_id=request.run_id, bucket=request.bucket)
    if manifest.objects:  # an object with no valid event left may still have rows in the state to remove
        rules = rules or SessionRules(timeout_minutes=timeout_minutes, max_session_hours=max_session_hours)
        with tempfile.TemporaryDirectory(prefix="sessionize-", dir=workdir) as tmp:
            result = _sessionize(request, manifest, lake, rules, memory_limit, Path(tmp), fence)
    lake.put_bytes(
        run_result_key(request.run_id, request.bucket),
        result.model_dump_json().encode("utf-8"),
        content_type="application/json",
    )
    return result


@dataclass
class _BucketRun:
    """One bucket of one run while it is worked on: where its files go and what it has found so far."""

    request: SessionizeInput
    manifest: Manifest
    lake: ObjectStore
    con: duckdb.DuckDBPyConnection
    tmp: Path
    transfers: ThreadPoolExecutor
    existing: set[str] = field(default_factory=set)  # the bucket's state keys in the lake
    touched: list[int] = field(default_factory=list)  # the slices the run reads and rewrites

    @property
    def bucket(self) -> int:
        return self.request.bucket

    @property
    def n_buckets(self) -> int:
        return self.manifest.n_buckets

    @property
    def out_prefix(self) -> str:
        return run_bucket_prefix(self.request.run_id, self.request.bucket)


def _sessionize(
    request: SessionizeInput,
    manifest: Manifest,
    lake: ObjectStore,
    rules: SessionRules,
    memory_limit: str | None,
    tmp: Path,
    fence: Callable[[], None] | None,
) -> SessionizeResult:
    result = SessionizeResult(run_id=request.run_id, bucket=request.bucket)
    with ThreadPoolExecutor(TRANSFER_THREADS) as transfers:
        con = _cursor(memory_limit, Path(tempfile.gettempdir()) / "sessionize-spill")
        try:
            run = _BucketRun(request, manifest, lake, con, tmp, transfers)
            _read_window(run)
            run.touched = _touched_slices(run)
            if not run.touched:
                return result
            state.load_slices(con, lake, run.existing, run.bucket, run.touched, tmp / "state", transfers)
            engine = _recompute_visitors(run, rules)
            counts = _stage(run, engine)
            staged = state.stage_slices(con, run.bucket, run.touched, run.existing, tmp / "new_state")
            state.write_index(con, run.touched, tmp / state.STATE_INDEX)
        finally:
            con.close()
        _write(run, staged, fence)
    return result.model_copy(
        update={
            **counts,
            "n_slices": len(run.touched),
            "events_key": run.out_prefix + RUN_EVENTS,
            "sessions_key": run.out_prefix + RUN_SESSIONS,
            "visitors_key": run.out_prefix + RUN_VISITORS,
        }
    )


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


# -- phase 1: read the window ----------------------------------------------------------------------------------------
def _read_window(run: _BucketRun) -> None:
    """Temp tables ``new_rows`` (the window's validated rows in this bucket, in VALIDATED_COLUMNS, one copy per
    redelivered row kept below) and ``window_objects`` (the objects the window brings)."""
    keys = sorted({o.validated_key for o in run.manifest.objects if o.validated_key})
    files = list(
        run.transfers.map(
            lambda ik: state.fetch(run.lake, ik[1], run.tmp / "in" / f"{ik[0]:06d}.parquet"), enumerate(keys)
        )
    )
    if files:
        scan = f"read_parquet([{', '.join(sql.literal(p) for p in files)}], union_by_name = true)"
        available = {r[0]: r[1] for r in run.con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        run.con.execute(
            f"CREATE TEMP TABLE new_rows AS SELECT {_projection(available)} FROM {scan}"
            f" WHERE {bucket_sql('anonymous_id', run.n_buckets)} = {int(run.bucket)}"
        )
    else:
        state.create_empty(run.con, "new_rows", VALIDATED_COLUMNS)
    objects = sql.array(sorted({o.source_key for o in run.manifest.objects}))
    run.con.execute(*sql.load("clickstream.sessionize", "window_objects").bind({"objects": objects}))


def _projection(available: dict[str, str]) -> str:
    """VALIDATED_COLUMNS in order, cast to their types; a column the files lack is a typed NULL."""
    parts = []
    for name, typ in VALIDATED_COLUMNS:
        if name not in available:
            parts.append(f"NULL::{typ} AS {sql.identifier(name)}")
            continue
        expr = cast_expr(name, available[name])
        parts.append(expr if " AS " in expr else f"{expr}::{typ} AS {sql.identifier(name)}")
    return ", ".join(parts)


# -- phase 2: find the touched slices ----------------------------------------------------------------------------
def _touched_slices(run: _BucketRun) -> list[int]:
    """The slices the window's rows fall in, those the object index names for the window's objects, and those of
    the visitors an earlier attempt of this task named (temp tables ``state_index`` and ``earlier``)."""
    run.existing = set(run.lake.list_keys(bucket_prefix(run.bucket)))
    state.load_index(run.con, run.lake, run.existing, run.bucket, run.tmp / "index", run.transfers)
    _earlier_attempt_visitors(run)
    slice_of = state.slice_sql("anonymous_id", run.n_buckets)
    rows = run.con.execute(
        f"""
        SELECT {slice_of} FROM new_rows
        UNION SELECT r.s FROM range({state.STATE_SLICES}) r(s), (
            SELECT bit_or(i.slices) AS m FROM state_index i SEMI JOIN window_objects w USING (source_object)
        ) WHERE (m >> r.s::INTEGER) & 1 = 1
        UNION SELECT {slice_of} FROM earlier
        ORDER BY 1
        """
    ).fetchall()
    touched = [int(r[0]) for r in rows]
    if touched:  # the sessions of the touched slices are read too
        run.existing |= set(run.lake.list_keys(sessions_bucket_prefix(run.bucket)))
    return touched


def _earlier_attempt_visitors(run: _BucketRun) -> None:
    """Temp table ``earlier``: the visitors an earlier attempt of this task named (none on a first attempt)."""
    key = run.out_prefix + RUN_VISITORS
    if run.lake.exists(key):
        path = state.fetch(run.lake, key, run.tmp / "earlier" / RUN_VISITORS)
        run.con.execute(
            "CREATE TEMP TABLE earlier AS SELECT anonymous_id::VARCHAR AS anonymous_id"
            f" FROM read_parquet({sql.literal(path)})"
        )
    else:
        run.con.execute("CREATE TEMP TABLE earlier (anonymous_id VARCHAR)")


# -- phase 3: recompute the affected visitors ----------------------------------------------------------------------
def _recompute_visitors(run: _BucketRun, rules: SessionRules) -> Sessionizer:
    """Temp tables ``affected`` and ``combined`` (the affected visitors' rows: the state's, minus every row of the
    window's objects, plus the window's rows), and the rule run over them."""
    run.con.execute(sql.load("clickstream.sessionize", "affected").text)
    run.con.execute(
        f"""
        CREATE TEMP TABLE combined AS
        SELECT *, row_number() OVER () AS _cs_row FROM (
            SELECT {state.column_refs(_VALIDATED_NAMES, "s")}
            FROM state s SEMI JOIN affected v ON s.anonymous_id = v.anonymous_id
            ANTI JOIN window_objects w ON s.source_object IS NOT DISTINCT FROM w.source_object
            UNION ALL
            SELECT * FROM (
                SELECT DISTINCT ON ({", ".join(_REDELIVERY_KEY)}) {state.column_refs(_VALIDATED_NAMES, "n")}
                FROM new_rows n
                ORDER BY {", ".join(_REDELIVERY_KEY)}, n.received_at, n.payload_hash
            )
        )
        """
    )
    # The rule ranks copies by event_id; keyed with the visitor, a visitor's duplicates are its own.
    run.con.execute(
        f"""
        CREATE TEMP VIEW engine_input AS
        SELECT * REPLACE (anonymous_id || '{_ID_SEP}' || event_id AS event_id), event_id AS _cs_event_id
        FROM combined
        """
    )
    engine = Sessionizer(
        run.con, "engine_input", [*_VALIDATED_NAMES, "_cs_row", "_cs_event_id"], rules, rid="_cs_row"
    )
    engine.run()
    return engine


# -- phase 4: stage the outputs and the new state ------------------------------------------------------------------
def _stage(run: _BucketRun, engine: Sessionizer) -> dict[str, int]:
    """The run's three output files, and temp tables ``new_state`` / ``new_sessions`` (each row with its ``_slice``):
    the affected visitors recomputed, everyone else's rows as they were. Returns the result's counts."""
    con, out = run.con, run.tmp / "out"
    out.mkdir()
    event_cols = ", ".join(
        "e._cs_event_id AS event_id" if n == "event_id" else f"e.{sql.identifier(n)}" for n in _EVENT_NAMES
    )
    con.execute(
        f"COPY (SELECT {event_cols} FROM {engine.events} e ORDER BY e.anonymous_id, e.event_ts, e._cs_event_id)"
        f" TO {sql.literal(out / RUN_EVENTS)} {sql.PARQUET}"
    )
    con.execute(
        f"COPY (SELECT * FROM {engine.sessions} ORDER BY anonymous_id, session_start)"
        f" TO {sql.literal(out / RUN_SESSIONS)} {sql.PARQUET}"
    )
    con.execute(
        "COPY (SELECT anonymous_id FROM affected ORDER BY anonymous_id)"
        f" TO {sql.literal(out / RUN_VISITORS)} {sql.PARQUET}"
    )
    slice_of = state.slice_sql("anonymous_id", run.n_buckets)
    con.execute(
        f"""
        CREATE TEMP TABLE new_state AS
        SELECT *, {slice_of} AS _slice FROM (
            SELECT {state.column_refs(state.STATE_NAMES, "s")}
            FROM state s ANTI JOIN affected v ON s.anonymous_id = v.anonymous_id
            UNION ALL
            SELECT {state.column_refs(_VALIDATED_NAMES, "c")},
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
        SELECT *, {slice_of} AS _slice FROM (
            SELECT * FROM state_sessions s ANTI JOIN affected v ON s.anonymous_id = v.anonymous_id
            UNION ALL BY NAME
            SELECT * FROM {engine.sessions}
        )
        """
    )
    row = one_row(
        con,
        f"""
        SELECT (SELECT count(*) FROM new_rows), (SELECT count(*) FROM affected),
               (SELECT count(*) FROM {engine.assign}), (SELECT count(*) FROM {engine.sessions}),
               count(*) FILTER (WHERE drop_reason = 'duplicate'),
               count(*) FILTER (WHERE drop_reason = 'duplicate_conflict')
        FROM new_state
        """,
    )
    names = ("n_new_events", "n_visitors", "n_events", "n_sessions", "n_duplicates", "n_conflicts")
    return dict(zip(names, (int(n) for n in row), strict=True))


# -- phase 5: write ------------------------------------------------------------------------------------------------
def _write(run: _BucketRun, staged: state.StagedSlices, fence: Callable[[], None] | None) -> None:
    """Outputs first, then the slices (an emptied slice's files removed), the index last: until it is written the
    old index still names every slice a retry must read, and the retry takes this attempt's visitors."""
    if fence is not None:
        fence()  # the execution still holds the pipeline lease, or nothing is written
    out = run.tmp / "out"
    list(
        run.transfers.map(
            lambda name: state.store(run.lake, out / name, run.out_prefix + name),
            (RUN_EVENTS, RUN_SESSIONS, RUN_VISITORS),
        )
    )
    list(run.transfers.map(lambda pk: state.store(run.lake, *pk), staged.files))
    list(run.transfers.map(run.lake.delete, staged.emptied))
    state.store(run.lake, run.tmp / state.STATE_INDEX, state.index_key(run.bucket))
