"""The Sessionize step: one user bucket of one run (``SessionizeInput`` -> ``SessionizeResult``).

A run reads its manifest, keeps the rows of its validated objects that fall in the bucket, and reads and rewrites
only the state slices (``sessionize.state``) those rows fall in, plus the slices the object index names for the run's
objects, so its cost follows what arrived, not the bucket's whole history. **A source object is a unit**: when a
window brings an object (by its manifest entry, even one left with no valid event), the object's rows in the state
become exactly the rows it brings now. An exact re-delivery therefore changes nothing, and a re-validation that
yields fewer rows (a stricter schema, an erasure, a row now quarantined) removes the rows it no longer has, also from
slices where it now has none. The affected visitors are the ones the window brought rows for and the ones whose rows
of those objects were removed (a visitor left with no row keeps no session); their hot events (sessions starting after
the slice's frozen boundary) and the window's are sessionized again by the same rule the CLI uses
(``sessionize.rule``), continuing from the visitor's frozen tail, or from their whole history when what arrived
reaches it (a thaw: ``sessionize.history``); everyone else's rows are carried over untouched. A retried
task also takes the visitors its earlier attempt listed, so a retry after a partial state write still names every
visitor the warehouse must replace. Copies of an event_id are ranked within the visitor (a visitor's history decides
its own duplicates, whatever the bucket or slice layout), so sessionization is a pure function of a visitor's events
and after any sequence of runs the state equals one full recompute.

The run's outputs, ``runs/<run_id>/bucket=NNNN/{events,sessions,visitors,users}.parquet``, hold the affected visitors'
recomputed kept events and sessions, their ids with the session start from which the warehouse replaces their rows
(``replace_from``), and their complete ``users`` links; ``result.json`` beside them is the step's answer (with what
the run read and wrote), which the back-fill path's Load reads instead of a state payload.

The work is done in named phases over one DuckDB cursor: read the window, find the touched slices, load their
state, recompute the affected visitors, stage the outputs and the new slices, write.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from clickstream.adapters.factory import Adapters, adapters_for
from clickstream.adapters.storage import ObjectStore
from clickstream.core import sql
from clickstream.core.buckets import bucket_sql
from clickstream.core.config import Settings
from clickstream.core.keys import bucket_prefix, sessions_bucket_prefix
from clickstream.core.observability import tracer
from clickstream.core.schema import EVENT_COLUMNS, SESSION_COLUMNS, USER_COLUMNS, VALIDATED_COLUMNS
from clickstream.core.times import parse_instant
from clickstream.pipeline.lease import hold_pipeline_lease
from clickstream.pipeline.manifest import (
    RUN_EVENTS,
    RUN_SESSIONS,
    RUN_USERS,
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
from clickstream.sessionize.history import boundary_for, midnight, starts_after_tail_sql
from clickstream.sessionize.idfilter import IdFilter
from clickstream.sessionize.rule import (
    DuckDBOptions,
    Sessionizer,
    SessionRules,
    connect,
    one_row,
    session_id_sql,
)

TRANSFER_THREADS = 8  # S3 transfers of one run overlap (network latency in Lambda)
_EVENT_NAMES = [name for name, _ in EVENT_COLUMNS]
_VALIDATED_NAMES = [name for name, _ in VALIDATED_COLUMNS]
_SESSION_NAMES = [name for name, _ in SESSION_COLUMNS]
_PACKAGE = "clickstream.sessionize"
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
        lookback_hours=settings.lookback_hours,
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
    lookback_hours: float = 72,
    memory_limit: str | None = None,
    workdir: Path | None = None,
    fence: Callable[[], None] | None = None,
) -> SessionizeResult:
    """Sessionize the bucket's share of the run's window and update the touched slices of its state (idempotent).
    ``lookback_hours`` places the frozen boundary (``sessionize.history.boundary_for``): it decides the run's cost,
    never its result. ``fence`` is called just before the first write and raises to stop it
    (``pipeline.lease.hold_pipeline_lease``)."""
    manifest = read_manifest(lake, request.run_id)
    result = SessionizeResult(run_id=request.run_id, bucket=request.bucket)
    if manifest.objects:  # an object with no valid event left may still have rows in the state to remove
        rules = rules or SessionRules(timeout_minutes=timeout_minutes, max_session_hours=max_session_hours)
        with tempfile.TemporaryDirectory(prefix="sessionize-", dir=workdir) as tmp:
            boundary = boundary_for(parse_instant(manifest.watermark_to), rules, lookback_hours)
            result = _sessionize(request, manifest, lake, rules, boundary, memory_limit, Path(tmp), fence)
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
    rules: SessionRules
    boundary: date  # where this run moves the touched slices' boundaries (never back)
    existing: set[str] = field(default_factory=set)  # the bucket's state keys in the lake
    base: state.BucketState = field(default_factory=state.BucketState)  # the generation the run starts from
    pointer_etag: str | None = (
        None  # the pointer as the run read it (None: none): the new one replaces only it
    )
    touched: list[int] = field(default_factory=list)  # the slices the run reads and rewrites
    counter: state.ReadCounter = field(default_factory=state.ReadCounter)
    frozen_loaded: set[int] = field(default_factory=set)  # slices whose frozen rows the run read
    thawed_slices: set[int] = field(default_factory=set)  # slices whose frozen part the run rewrites
    filters: dict[int, IdFilter] = field(default_factory=dict)  # the touched slices' frozen-id filters
    filters_built: set[int] = field(default_factory=set)  # slices whose filter was built from their ids
    written_rows: int = 0

    @property
    def bucket(self) -> int:
        return self.request.bucket

    @property
    def n_buckets(self) -> int:
        return self.manifest.n_buckets

    @property
    def out_prefix(self) -> str:
        return run_bucket_prefix(self.request.run_id, self.request.bucket)

    @property
    def generation(self) -> str:
        return state.generation_name(self.request.run_id)

    def slice_files(self, slice_no: int) -> state.SliceFiles:
        return self.base.slices.get(slice_no) or state.SliceFiles()

    def next_boundary(self, slice_no: int) -> date:
        old = self.slice_files(slice_no).boundary_date
        return max(old, self.boundary) if old is not None else self.boundary

    def slice_of(self, column: str) -> str:
        return state.slice_sql(column, self.n_buckets)


def _sessionize(
    request: SessionizeInput,
    manifest: Manifest,
    lake: ObjectStore,
    rules: SessionRules,
    boundary: date,
    memory_limit: str | None,
    tmp: Path,
    fence: Callable[[], None] | None,
) -> SessionizeResult:
    result = SessionizeResult(run_id=request.run_id, bucket=request.bucket)
    with ThreadPoolExecutor(TRANSFER_THREADS) as transfers:
        con = _cursor(memory_limit, Path(tempfile.gettempdir()) / "sessionize-spill")
        try:
            run = _BucketRun(request, manifest, lake, con, tmp, transfers, rules, boundary)
            _read_window(run)
            run.touched = _touched_slices(run)
            if not run.touched:
                return result
            _load_hot(run)
            engine = _recompute_visitors(run)
            counts = _stage_outputs(run, engine)
            staged = _stage_state(run, engine)
        finally:
            con.close()
        _write(run, staged, fence)
    read = run.counter
    return result.model_copy(
        update={
            **counts,
            **staged.counts,
            "n_slices": len(run.touched),
            "n_thawed_slices": len(run.thawed_slices),
            "state_rows_read": sum(read.rows.get(k, 0) for k in ("hot", "tail")),
            "index_rows_read": sum(read.rows.get(k, 0) for k in ("ids", "index")),
            "id_rows_read": read.rows.get("ids", 0),
            "frozen_rows_read": read.rows.get("frozen", 0),
            "state_bytes_read": sum(read.bytes.values()),
            "state_rows_written": run.written_rows,
            "events_key": run.out_prefix + RUN_EVENTS,
            "sessions_key": run.out_prefix + RUN_SESSIONS,
            "visitors_key": run.out_prefix + RUN_VISITORS,
            "users_key": run.out_prefix + RUN_USERS,
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
    current, run.pointer_etag = state.read_state_tagged(run.lake, run.bucket, run.existing)
    run.base = state.base_state(current, run.request.run_id)
    state.load_index(run.con, run.lake, run.base, run.tmp / "index", run.transfers, run.counter)
    _earlier_attempt_visitors(run)
    slice_of = run.slice_of("anonymous_id")
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
    return [int(r[0]) for r in rows]


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


# -- phase 3: read the hot part of the touched slices ----------------------------------------------------------------
def _load_hot(run: _BucketRun) -> None:
    """Temp tables of the touched slices (each row with its ``_slice``): ``hot`` and ``hot_sessions``, ``tail`` and
    ``tail_users``, ``slice_info`` (old and next boundary, legacy layout), and empty ``frozen`` /
    ``frozen_sessions`` (filled by :func:`_load_frozen` when a slice must be read whole); and the slices'
    frozen-id filters (:func:`_load_id_filters`)."""
    files = {s: run.slice_files(s) for s in run.touched}

    def load(table: str, columns: tuple[tuple[str, str], ...], attr: str, kind: str) -> None:
        sources = [(s, k) for s, f in files.items() if (k := getattr(f, attr)) is not None]
        state.load_table(
            run.con, run.lake, table, columns, sources, run.tmp / "state", run.transfers, run.counter, kind
        )

    hot = [(s, k) for s, f in files.items() if (k := f.hot or f.legacy) is not None]
    state.load_table(
        run.con, run.lake, "hot", state.ROW_COLUMNS, hot, run.tmp / "state", run.transfers, run.counter, "hot"
    )
    load("hot_sessions", SESSION_COLUMNS, "sessions", "hot")
    load("tail", state.TAIL_COLUMNS, "tail", "tail")
    load("tail_users", USER_COLUMNS, "users", "tail")
    _load_id_filters(run)
    for table, columns in (("frozen", state.ROW_COLUMNS), ("frozen_sessions", SESSION_COLUMNS)):
        state.load_table(run.con, run.lake, table, columns, [], run.tmp, run.transfers)
    run.con.execute(
        "CREATE TEMP TABLE slice_info AS SELECT unnest($1::INTEGER[]) AS _slice,"
        " unnest($2::TIMESTAMPTZ[]) AS boundary, unnest($3::TIMESTAMPTZ[]) AS next_boundary,"
        " unnest($4::BOOLEAN[]) AS legacy",
        [
            run.touched,
            [midnight(b) if (b := files[s].boundary_date) else None for s in run.touched],
            [midnight(run.next_boundary(s)) for s in run.touched],
            [files[s].legacy is not None for s in run.touched],
        ],
    )


def _load_id_filters(run: _BucketRun) -> None:
    """``run.filters``: the frozen-id filter of each touched slice with frozen ids (bytes counted, no rows). A slice
    with an index but no filter (written before the filters) has it built from its index (rows counted as ``ids``),
    and written by this run (``run.filters_built``)."""
    files = {s: run.slice_files(s) for s in run.touched}
    keyed = [(s, f.bloom) for s, f in files.items() if f.bloom is not None]
    for (s, _), data in zip(
        keyed, run.transfers.map(lambda sk: run.lake.get_bytes(sk[1]), keyed), strict=True
    ):
        run.counter.add("id_filter", 0, len(data))
        run.filters[s] = IdFilter.from_bytes(data)
    unfiltered = [s for s, f in files.items() if f.bloom is None and f.id_files]
    for s, hashes in _read_ids(run, unfiltered).items():
        run.filters[s] = IdFilter.of(hashes)
        run.filters_built.add(s)


def _read_ids(run: _BucketRun, slices: list[int]) -> dict[int, list[int]]:
    """The frozen-id index of ``slices`` (every file of it, rows counted as ``ids``): distinct hashes by slice."""
    sources = [(s, k) for s in slices for k in run.slice_files(s).id_files]
    state.load_table(
        run.con,
        run.lake,
        "old_ids",
        state.IDS_COLUMNS,
        sources,
        run.tmp / "ids",
        run.transfers,
        run.counter,
        "ids",
    )
    out: dict[int, list[int]] = {s: [] for s in slices}
    for s, h in run.con.execute("SELECT DISTINCT _slice, h FROM old_ids ORDER BY 1, 2").fetchall():
        out[int(s)].append(int(h))
    run.con.execute("DROP TABLE old_ids")
    return out


def _load_frozen(run: _BucketRun, slices: list[int]) -> None:
    """Add the frozen rows and sessions of ``slices`` (those not read yet) to ``frozen`` / ``frozen_sessions``."""
    todo = sorted(set(slices) - run.frozen_loaded)
    if not todo:
        return
    run.frozen_loaded |= set(todo)
    for table, columns, attr in (
        ("frozen", state.ROW_COLUMNS, "frozen"),
        ("frozen_sessions", SESSION_COLUMNS, "frozen_sessions"),
    ):
        sources = [(s, k) for s in todo for k in getattr(run.slice_files(s), attr)]
        part = f"{table}_part"
        state.load_table(
            run.con,
            run.lake,
            part,
            columns,
            sources,
            run.tmp / "frozen",
            run.transfers,
            run.counter,
            "frozen",
        )
        run.con.execute(f"INSERT INTO {table} SELECT * FROM {part}")
        run.con.execute(f"DROP TABLE {part}")


def _thaw(run: _BucketRun, visitors: str) -> None:
    """Thaw the visitors ``visitors`` (a SELECT of anonymous_id): they are recomputed whole, from their frozen rows
    too, and their slices' frozen part is written again."""
    con = run.con
    con.execute(f"CREATE OR REPLACE TEMP TABLE thaw_now AS {visitors} EXCEPT SELECT anonymous_id FROM thawed")
    con.execute("INSERT INTO thawed SELECT anonymous_id FROM thaw_now")
    con.execute(
        "INSERT INTO affected SELECT anonymous_id FROM thaw_now EXCEPT SELECT anonymous_id FROM affected"
    )
    slices = con.execute(f"SELECT DISTINCT {run.slice_of('anonymous_id')} FROM thaw_now").fetchall()
    run.thawed_slices |= {int(r[0]) for r in slices}


# -- phase 4: recompute the affected visitors ----------------------------------------------------------------------
def _recompute_visitors(run: _BucketRun) -> Sessionizer:
    """Temp tables ``affected``, ``thawed`` and ``combined`` (the affected visitors' hot rows, and for thawed ones
    their frozen rows, minus every row of the window's objects, plus the window's rows, plus the frozen copies of
    event ids the window brings again, held for the dedupe only), and the rule run over them.

    The checks of ``sessionize.history`` run after the rule; a visitor failing one is thawed and the rule runs
    again (a thawed visitor has no frozen prefix left, so this ends)."""
    con = run.con
    con.execute(sql.load(_PACKAGE, "affected").text)
    con.execute("CREATE TEMP TABLE thawed (anonymous_id VARCHAR)")
    (mask,) = one_row(
        con,
        "SELECT coalesce(bit_or(i.frozen), 0) FROM state_index i SEMI JOIN window_objects w USING (source_object)",
    )
    in_frozen = [s for s in run.touched if (int(mask) >> s) & 1]
    if in_frozen:  # the window brings again objects with frozen rows: their rows become what they bring now
        _load_frozen(run, in_frozen)
        _thaw(
            run,
            "SELECT DISTINCT f.anonymous_id FROM frozen f SEMI JOIN window_objects w USING (source_object)",
        )
    _find_hits(run)
    _load_frozen(run, [int(r[0]) for r in con.execute("SELECT DISTINCT _slice FROM hits").fetchall()])
    while True:
        engine = _run_rule(run)
        con.execute(_violations_sql(run, engine))
        (n,) = one_row(con, "SELECT count(*) FROM violations")
        if n == 0:
            return engine
        _load_frozen(
            run,
            [
                int(r[0])
                for r in con.execute(
                    f"SELECT DISTINCT {run.slice_of('anonymous_id')} FROM violations"
                ).fetchall()
            ],
        )
        _thaw(run, "SELECT anonymous_id FROM violations")


def _find_hits(run: _BucketRun) -> None:
    """Temp table ``hits``: the window's (visitor, event_id) pairs whose hash the frozen-id filter of the visitor's
    slice may hold, a copy of an event whose first copy may be frozen. A filter hit is only a candidate: the frozen
    rows decide (they are read, and held for the dedupe). The window's hashes are computed once
    (``window_ids``), probed in Python, and the candidates joined back."""
    con = run.con
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE window_ids AS
        SELECT anonymous_id, event_id, {run.slice_of("anonymous_id")} AS _slice,
               {state.id_hash_sql("anonymous_id", "event_id")} AS h
        FROM new_rows WHERE event_id IS NOT NULL
        """
    )
    by_slice: dict[int, list[int]] = {}
    for s, h in con.execute("SELECT DISTINCT _slice, h FROM window_ids ORDER BY 1, 2").fetchall():
        by_slice.setdefault(int(s), []).append(int(h))
    candidates = [
        (s, h) for s, hashes in by_slice.items() if s in run.filters for h in run.filters[s].probe(hashes)
    ]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE id_candidates AS SELECT unnest($1::INTEGER[]) AS _slice,"
        " unnest($2::UBIGINT[]) AS h",
        [[s for s, _ in candidates], [h for _, h in candidates]],
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE hits AS
        SELECT DISTINCT n.anonymous_id, n.event_id, n._slice
        FROM window_ids n
        JOIN id_candidates i ON i.h = n.h AND i._slice = n._slice
        """
    )


def _run_rule(run: _BucketRun) -> Sessionizer:
    """``combined`` as :func:`_recompute_visitors` describes it, and the rule over it, keyed by visitor."""
    con = run.con
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE combined AS
        SELECT *, row_number() OVER () AS _cs_row FROM (
            SELECT {state.column_refs(_VALIDATED_NAMES, "s")}, false AS _held
            FROM (SELECT * FROM hot UNION ALL SELECT f.* FROM frozen f SEMI JOIN thawed t USING (anonymous_id)) s
            SEMI JOIN affected v ON s.anonymous_id = v.anonymous_id
            ANTI JOIN window_objects w ON s.source_object IS NOT DISTINCT FROM w.source_object
            UNION ALL
            SELECT * FROM (
                SELECT DISTINCT ON ({", ".join(_REDELIVERY_KEY)}) {state.column_refs(_VALIDATED_NAMES, "n")},
                       false AS _held
                FROM new_rows n
                ORDER BY {", ".join(_REDELIVERY_KEY)}, n.received_at, n.payload_hash
            )
            UNION ALL
            SELECT {state.column_refs(_VALIDATED_NAMES, "f")}, true AS _held
            FROM frozen f
            SEMI JOIN hits h ON f.anonymous_id = h.anonymous_id AND f.event_id = h.event_id
            ANTI JOIN thawed t ON f.anonymous_id = t.anonymous_id
        )
        """
    )
    # The rule ranks copies by event_id; keyed with the visitor, a visitor's duplicates are its own.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW engine_input AS
        SELECT * REPLACE (anonymous_id || '{_ID_SEP}' || event_id AS event_id), event_id AS _cs_event_id
        FROM combined
        """
    )
    seed = None
    if run.rules.split_on_campaign:  # the latest frozen campaign continues into the recomputed part
        con.execute(
            "CREATE OR REPLACE TEMP VIEW seed AS SELECT t.anonymous_id, t.last_campaign AS _campaign"
            " FROM tail t ANTI JOIN thawed h ON t.anonymous_id = h.anonymous_id"
        )
        seed = "seed"
    engine = Sessionizer(
        con,
        "engine_input",
        [*_VALIDATED_NAMES, "_cs_row", "_cs_event_id", "_held"],
        run.rules,
        rid="_cs_row",
        held="_held",
        seed=seed,
    )
    engine.run()
    return engine


def _violations_sql(run: _BucketRun, engine: Sessionizer) -> str:
    """Temp table ``violations``: the visitors (not thawed yet) whose frozen prefix this run's rows would change:
    a held frozen copy that now ranks after another copy, or a first event after the prefix that fails the
    checks of ``sessionize.history``."""
    return f"""
        CREATE OR REPLACE TEMP TABLE violations AS
        SELECT c.anonymous_id FROM {engine.drops} d JOIN combined c ON c._cs_row = d._rid WHERE c._held
        UNION
        SELECT f.anonymous_id
        FROM (
            SELECT a.anonymous_id, a._t, c.event_id, c.event_ts, c.utm_source, c.utm_medium, c.utm_campaign
            FROM {engine.assign} a JOIN combined c ON c._cs_row = a._rid
            WHERE a._ord = 1
        ) f
        JOIN tail t ON t.anonymous_id = f.anonymous_id
        WHERE f.anonymous_id NOT IN (SELECT anonymous_id FROM thawed)
          AND NOT {starts_after_tail_sql(run.rules)}
        """


# -- phase 5: stage the outputs ------------------------------------------------------------------------------------
def _stage_outputs(run: _BucketRun, engine: Sessionizer) -> dict[str, int]:
    """The run's four output files: the affected visitors' recomputed events and sessions, the visitors with the
    session start from which the warehouse replaces their rows (``replace_from``: null = their whole history,
    else the earlier of the slice's old boundary and their first recomputed session), and their ``users`` links
    (the frozen tail's merged with the recomputed events'). Returns the result's counts."""
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
        f"COPY (SELECT {state.column_refs(_SESSION_NAMES, 's')} FROM {engine.sessions} s"
        f" ORDER BY anonymous_id, session_start) TO {sql.literal(out / RUN_SESSIONS)} {sql.PARQUET}"
    )
    con.execute(
        f"""
        COPY (
            SELECT v.anonymous_id,
                   CASE WHEN h.anonymous_id IS NULL AND i.boundary IS NOT NULL
                        THEN least(i.boundary, coalesce(m.first_start, i.boundary)) END AS replace_from
            FROM affected v
            LEFT JOIN slice_info i ON i._slice = {run.slice_of("v.anonymous_id")}
            LEFT JOIN thawed h ON h.anonymous_id = v.anonymous_id
            LEFT JOIN (SELECT anonymous_id, min(session_start) AS first_start FROM {engine.sessions} GROUP BY 1) m
                ON m.anonymous_id = v.anonymous_id
            ORDER BY v.anonymous_id
        ) TO {sql.literal(out / RUN_VISITORS)} {sql.PARQUET}
        """
    )
    con.execute(
        f"""
        COPY (
            SELECT anonymous_id, user_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen
            FROM (
                SELECT anonymous_id, user_id, event_ts AS first_seen, event_ts AS last_seen
                FROM {engine.events} WHERE user_id IS NOT NULL
                UNION ALL
                SELECT u.anonymous_id, u.user_id, u.first_seen, u.last_seen
                FROM tail_users u SEMI JOIN affected v ON u.anonymous_id = v.anonymous_id
                ANTI JOIN thawed h ON u.anonymous_id = h.anonymous_id
            )
            GROUP BY anonymous_id, user_id ORDER BY anonymous_id, user_id
        ) TO {sql.literal(out / RUN_USERS)} {sql.PARQUET}
        """
    )
    row = one_row(
        con,
        f"""
        SELECT (SELECT count(*) FROM new_rows), (SELECT count(*) FROM affected),
               (SELECT count(*) FROM {engine.assign}), (SELECT count(*) FROM {engine.sessions}),
               (SELECT count(*) FROM thawed)
        """,
    )
    names = ("n_new_events", "n_visitors", "n_events", "n_sessions", "n_thawed_visitors")
    return dict(zip(names, (int(n) for n in row), strict=True))


# -- phase 6: stage the new state ----------------------------------------------------------------------------------
@dataclass
class _Staged:
    """The new generation: files to write (local path, key), the pointer, what to publish."""

    files: list[tuple[Path, str]]
    pointer: state.BucketState
    counts: dict[str, int]


def _stage_state(run: _BucketRun, engine: Sessionizer) -> _Staged:
    """Temp tables of every row and session of the touched slices after the run, split at each slice's next
    boundary (``frozen_out``: the rows a slice's new frozen file holds; for a thawed slice its whole frozen part),
    then one file per slice and kind (:func:`_slice_files`) and the new object index. Length: a chain of
    temp tables, each built from the one before it, read top to bottom."""
    con = run.con
    con.execute(
        f"""
        CREATE TEMP TABLE recomputed AS
        SELECT {state.column_refs(_VALIDATED_NAMES, "c")},
               CASE WHEN a._rid IS NOT NULL THEN {session_id_sql("c.anonymous_id", "a._start")} END AS session_id,
               d.drop_reason,
               make_timestamp(coalesce(a._start, k._start))::TIMESTAMPTZ AS session_start
        FROM combined c
        LEFT JOIN {engine.assign} a ON c._cs_row = a._rid
        LEFT JOIN {engine.drops} d ON c._cs_row = d._rid
        LEFT JOIN (
            SELECT c2.anonymous_id, c2.event_id, a2._start
            FROM combined c2 JOIN {engine.assign} a2 ON c2._cs_row = a2._rid
        ) k ON d._rid IS NOT NULL AND k.anonymous_id = c.anonymous_id AND k.event_id = c.event_id
        WHERE NOT c._held
        """
    )
    slice_of = run.slice_of("anonymous_id")
    con.execute(
        f"""
        CREATE TEMP TABLE next_rows AS
        SELECT r.*, (r.session_start IS NULL OR r.session_start < i.next_boundary) AS _frozen
        FROM (
            SELECT {state.column_refs(state.ROW_NAMES, "h")}, h._slice
            FROM hot h ANTI JOIN affected v ON h.anonymous_id = v.anonymous_id
            UNION ALL
            SELECT {state.column_refs(state.ROW_NAMES, "c")}, {slice_of} FROM recomputed c
        ) r JOIN slice_info i USING (_slice)
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE next_sessions AS
        SELECT s.*, s.session_start < i.next_boundary AS _frozen
        FROM (
            SELECT {state.column_refs(_SESSION_NAMES, "h")}, h._slice
            FROM hot_sessions h ANTI JOIN affected v ON h.anonymous_id = v.anonymous_id
            UNION ALL
            SELECT {state.column_refs(_SESSION_NAMES, "e")}, {slice_of} FROM {engine.sessions} e
        ) s JOIN slice_info i USING (_slice)
        """
    )
    thawed = sql.array(sorted(run.thawed_slices))
    for name in ("frozen_out", "frozen_sessions_out", "next_tail", "next_users"):
        query, params = sql.load(_PACKAGE, name).bind({"thawed_slices": thawed})
        con.execute(query, params)
    con.execute(
        f"CREATE TEMP TABLE frozen_out_ids AS SELECT DISTINCT {state.id_hash_sql('anonymous_id', 'event_id')} AS h,"
        " _slice FROM frozen_out WHERE event_id IS NOT NULL"
    )
    files, pointer = _slice_files(run)
    index = run.tmp / "new_state" / f"objects-{run.generation}.parquet"
    query, params = sql.load(_PACKAGE, "object_index").bind(
        {
            "touched_mask": sum(1 << t for t in run.touched),
            "thawed_mask": sum(1 << t for t in run.thawed_slices),
        }
    )
    con.execute(
        "CREATE TEMP VIEW index_rows AS SELECT source_object, _slice, false AS _frozen FROM next_rows"
        " WHERE NOT _frozen UNION ALL SELECT source_object, _slice, true FROM frozen_out"
    )
    path, n = state.write_parquet(con, query, index, params)
    run.written_rows += n
    pointer.index = bucket_prefix(run.bucket) + path.name
    files.append((path, pointer.index))
    (dups, conflicts) = one_row(
        con,
        "SELECT count(*) FILTER (WHERE drop_reason = 'duplicate'), count(*) FILTER (WHERE drop_reason ="
        " 'duplicate_conflict') FROM (SELECT drop_reason FROM next_rows WHERE NOT _frozen"
        " UNION ALL SELECT drop_reason FROM frozen_out)",
    )
    return _Staged(files, pointer, {"n_duplicates": int(dups), "n_conflicts": int(conflicts)})


def _slice_files(run: _BucketRun) -> tuple[list[tuple[Path, str]], state.BucketState]:
    """One file per touched slice and kind from the staged tables, and the new generation's pointer: a touched
    slice gets new hot files; new frozen files when rows froze (appended to its list, or for a thawed slice
    replacing it); a new tail, users and id index when its frozen part changed. Untouched slices keep theirs."""
    con, gen, folder = run.con, run.generation, run.tmp / "new_state"
    pointer = state.BucketState(generation=run.request.run_id, slices=dict(run.base.slices))
    pointer.previous = dataclasses.replace(run.base, previous=None) if run.base.keys() else None
    files: list[tuple[Path, str]] = []

    def put(slice_no: int, name: str, query: str) -> str | None:
        path, n = state.write_parquet(con, query, folder / f"{slice_no:02d}" / f"{name}-{gen}.parquet")
        if n == 0:
            return None
        run.written_rows += n
        key = state.slice_prefix(run.bucket, slice_no) + path.name
        files.append((path, key))
        return key

    changed = {int(r[0]) for r in con.execute("SELECT DISTINCT _slice FROM frozen_out").fetchall()}
    for s in run.touched:
        old = run.slice_files(s)
        thawed = s in run.thawed_slices
        new = state.SliceFiles(boundary=run.next_boundary(s).isoformat())
        new.hot = put(s, "hot", _rows_of("next_rows", s, "NOT _frozen"))
        new.sessions = put(s, "sessions", _sessions_of("next_sessions", s, "NOT _frozen"))
        frozen = put(s, "frozen", _rows_of("frozen_out", s))
        frozen_sessions = put(s, "frozen-sessions", _sessions_of("frozen_sessions_out", s))
        new.frozen = ([] if thawed else list(old.frozen)) + ([frozen] if frozen else [])
        new.frozen_sessions = ([] if thawed else list(old.frozen_sessions)) + (
            [frozen_sessions] if frozen_sessions else []
        )
        if thawed or s in changed:
            new.tail = put(s, "tail", _of("next_tail", s, state.TAIL_COLUMNS, "anonymous_id"))
            new.users = put(s, "users", _of("next_users", s, USER_COLUMNS, "anonymous_id, user_id"))
        else:
            new.tail, new.users = old.tail, old.users
        _stage_ids(run, s, new, put, files)
        pointer.slices[s] = new
    return files, pointer


def _stage_ids(
    run: _BucketRun,
    s: int,
    new: state.SliceFiles,
    put: Callable[[int, str, str], str | None],
    files: list[tuple[Path, str]],
) -> None:
    """The frozen-id index and filter of touched slice ``s`` in the new generation (``frozen_out_ids``: the ids
    this run froze; for a thawed slice every frozen id). A thawed slice, or one freezing for the first time, gets
    both written whole. A later freeze appends its ids as one more index file (``ids_added``) and adds them to the
    filter (which grows by a layer when full: the index is not read). A slice whose filter this run built from its
    index gets it written; otherwise the slice keeps its files."""
    old = run.slice_files(s)
    new.ids, new.ids_added, new.bloom = old.ids, list(old.ids_added), old.bloom
    added = _hashes(run, s)
    id_filter = run.filters.get(s)
    if s in run.thawed_slices or (added and id_filter is None):  # the index is what this run froze
        new.ids = put(s, "ids", _of("frozen_out_ids", s, state.IDS_COLUMNS, "h"))
        new.ids_added = []
        id_filter = IdFilter.of(added) if new.ids else None
    elif added and id_filter is not None:
        delta = put(s, "ids", _of("frozen_out_ids", s, state.IDS_COLUMNS, "h"))
        new.ids_added += [delta] if delta else []
        id_filter.add(added)
    elif s not in run.filters_built:
        return  # nothing froze: the filter as it was
    if id_filter is None:
        new.bloom = None
        return
    path = run.tmp / "new_state" / f"{s:02d}" / f"bloom-{run.generation}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(id_filter.to_bytes())
    new.bloom = state.slice_prefix(run.bucket, s) + path.name
    files.append((path, new.bloom))


def _hashes(run: _BucketRun, s: int) -> list[int]:
    """The ids this run froze in slice ``s`` (``frozen_out_ids``)."""
    rows = run.con.execute(f"SELECT h FROM frozen_out_ids WHERE _slice = {int(s)} ORDER BY h").fetchall()
    return [int(r[0]) for r in rows]


def _rows_of(table: str, slice_no: int, where: str = "true") -> str:
    return (
        f"SELECT {state.column_refs(state.ROW_NAMES, 't')} FROM {table} t WHERE _slice = {int(slice_no)}"
        f" AND {where} ORDER BY anonymous_id, event_ts, event_id, source_object, source_line"
    )


def _sessions_of(table: str, slice_no: int, where: str = "true") -> str:
    return (
        f"SELECT {state.column_refs(_SESSION_NAMES, 't')} FROM {table} t WHERE _slice = {int(slice_no)}"
        f" AND {where} ORDER BY anonymous_id, session_start"
    )


def _of(table: str, slice_no: int, columns: tuple[tuple[str, str], ...], order: str) -> str:
    names = [n for n, _ in columns]
    return f"SELECT {state.column_refs(names, 't')} FROM {table} t WHERE _slice = {int(slice_no)} ORDER BY {order}"


# -- phase 7: write ------------------------------------------------------------------------------------------------
def _write(run: _BucketRun, staged: _Staged, fence: Callable[[], None] | None) -> None:
    """Outputs first, then the new generation's files, then the pointer (the state moves as a whole; only over the
    pointer the run read, else :class:`state.PointerMoved` and nothing more), then the lake's sessions table of the
    touched slices, and last the files neither the new nor the previous generation names: a run that published
    deletes only files it listed before it read the pointer, so never one a later generation names."""
    if fence is not None:
        fence()  # the execution still holds the pipeline lease, or nothing is written
    out = run.tmp / "out"
    list(
        run.transfers.map(
            lambda name: state.store(run.lake, out / name, run.out_prefix + name),
            (RUN_EVENTS, RUN_SESSIONS, RUN_VISITORS, RUN_USERS),
        )
    )
    list(run.transfers.map(lambda pk: state.store(run.lake, *pk), staged.files))
    state.swap_pointer(run.lake, run.bucket, staged.pointer, run.pointer_etag, run.request.run_id)
    _publish(run, staged)
    keep = staged.pointer.keys() | (staged.pointer.previous.keys() if staged.pointer.previous else set())
    stale = sorted(k for k in run.existing if k not in keep and k != state.pointer_key(run.bucket))
    list(run.transfers.map(run.lake.delete, stale))


def _publish(run: _BucketRun, staged: _Staged) -> None:
    """The lake's sessions table for the touched slices: ``hot.parquet`` and a ``frozen-<gen>.parquet`` per frozen
    sessions file of the new generation (written when new), nothing else in the slice's folder."""
    local = {key: path for path, key in staged.files}
    published = set(run.lake.list_keys(sessions_bucket_prefix(run.bucket)))
    writes: list[tuple[Path, str]] = []
    wanted: set[str] = set()
    for s in run.touched:
        files = staged.pointer.slices[s]
        folder = state.published_prefix(run.bucket, s)
        if files.sessions is not None:
            writes.append((local[files.sessions], folder + state.PUBLISHED_HOT))
            wanted.add(folder + state.PUBLISHED_HOT)
        for key in files.frozen_sessions:
            target = folder + key.rsplit("/", 1)[-1].replace("frozen-sessions-", "frozen-", 1)
            wanted.add(target)
            if key in local:
                writes.append((local[key], target))
    list(run.transfers.map(lambda pk: state.store(run.lake, *pk), writes))
    prefixes = tuple(state.published_prefix(run.bucket, s) for s in run.touched)
    stale = sorted(k for k in published if k.startswith(prefixes) and k not in wanted)
    list(run.transfers.map(run.lake.delete, stale))
