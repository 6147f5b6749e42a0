"""The warehouse adapter: a connection to DuckDB or PostgreSQL chosen by URL, behind one small interface.

URLs: ``duckdb:///abs/path/warehouse.duckdb`` (the file and its folder are created) or ``postgresql://…`` /
``postgres://…`` / a libpq ``key=value`` string. In the cloud the DSN comes from a Secrets Manager secret
(``Settings.warehouse_secret_arn``): either a DSN string or RDS-style JSON with host/port/username/password/dbname.
Secrets get TLS: ``sslmode`` (default ``require``; ``verify-full`` with a root certificate when one is configured),
never weaker than the secret's own. Every PostgreSQL connection has a ``connect_timeout`` and server-side
statement and idle-in-transaction timeouts unless its DSN or role sets them (see ``SESSION_TIMEOUTS``).

SQL is written once with ``?`` placeholders; the PostgreSQL connection rewrites them for psycopg. Both engines run
with the session time zone UTC, so timestamps go in and come out as aware UTC datetimes.

Parquet files reach the warehouse through DuckDB SQL over ``read_parquet`` (:func:`parquet_source`): the DuckDB
warehouse runs it itself (``INSERT … SELECT``); PostgreSQL gets its rows by binary ``COPY … FROM STDIN``: an in-memory
DuckDB encodes each row as a binary COPY tuple in SQL (no Python per value) while the rows are sent, so the server
parses no text (see :func:`binary_copy_select`).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from clickstream.core.config import Settings
from clickstream.core.errors import DomainError
from clickstream.core.sql import literal

Dialect = Literal["duckdb", "postgresql"]
Columns = Sequence[tuple[str, str]]

# TLS modes from weakest to strongest (libpq's sslmode); a secret's DSN never weakens the configured one.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Seconds to wait for the server before a connection attempt fails (libpq's connect_timeout), unless the DSN says.
CONNECT_TIMEOUT_SECONDS = 10
# Server-side limits set on every PostgreSQL session whose DSN, role or database leaves them off (0): a statement
# ends before the load function's 15-minute limit would kill the process mid-transaction, and a transaction left
# idle by a client that died (a frozen or timed-out Lambda) releases its locks instead of holding them for hours.
SESSION_TIMEOUTS = {"statement_timeout": "14min", "idle_in_transaction_session_timeout": "5min"}


class WarehouseError(DomainError):
    """The warehouse is misconfigured or refused an operation on purpose (bad URL, bad secret, bad migration)."""

    code = "warehouse_error"


class KeyConflict(DomainError):
    """Rows being written collide with rows already present on a primary key."""

    code = "key_conflict"


def sql_type(duckdb_type: str) -> str:
    """A column type of ``clickstream.core.schema`` spelled so that both engines accept it."""
    return "DOUBLE PRECISION" if duckdb_type.upper() == "DOUBLE" else duckdb_type


def column_list(columns: Columns) -> str:
    return ", ".join(name for name, _ in columns)


class Connection:
    """One open connection. Subclasses implement the engine-specific parts; the SQL text is shared."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def query_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def script(self, sql_text: str) -> None:
        """Run several ``;``-separated statements (no parameters): a migration file."""
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        raise NotImplementedError

    def lock(self, key: int) -> None:
        """Serialize writers on ``key`` until the current transaction ends (PostgreSQL advisory lock)."""

    def scan(self, select: str) -> list[tuple[Any, ...]]:
        """Rows of a DuckDB ``select`` over local Parquet files (see :func:`parquet_source`)."""
        raise NotImplementedError

    def load_select(self, table: str, columns: Columns, select: str) -> None:
        """Append the rows of a DuckDB ``select`` over local Parquet files to ``table`` (its ``columns``, in order).

        Inside a transaction the rows go away with a rollback. A primary-key collision raises :class:`KeyConflict`
        (on PostgreSQL inside :meth:`savepoint`, so the transaction can go on).
        """
        raise NotImplementedError

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside rolls back only its work (PostgreSQL)."""
        raise WarehouseError(f"{self.dialect} has no savepoints")
        yield  # pragma: no cover

    def prepare_event_days(self, days: Sequence[date]) -> list[date]:
        """Make sure ``events`` can take rows of these UTC days; returns the days whose storage was created now.

        A no-op on DuckDB (one table); PostgreSQL creates the missing daily partitions (see migration 0005).
        """
        return []

    def event_days_to_rebuild(self, incoming: dict[date, int], replaced: dict[date, int]) -> list[date]:
        """The existing UTC days whose storage a load had better rebuild than update (none on DuckDB).

        ``incoming``: the load's events per day; ``replaced``: about how many stored events of each day it replaces
        (an estimate is enough: the choice changes the cost, never the result). See
        :meth:`PostgresConnection.event_days_to_rebuild`.
        """
        return []

    def load_events(
        self,
        columns: Columns,
        select: str,
        *,
        rebuild: Sequence[date] = (),
        replaced: str = "FALSE",
        kept: str = "SELECT * FROM {table}",
    ) -> list[date]:
        """Append the rows of a DuckDB ``select`` (``columns`` of ``events``) to ``events``, like :meth:`load_select`.

        Returns the UTC days whose storage this call created (PostgreSQL: new daily partitions, filled before
        their indexes are built; see :meth:`PostgresConnection.load_events`). ``rebuild`` names existing days
        (from :meth:`event_days_to_rebuild`) whose stored rows matching the SQL condition ``replaced`` the caller
        has NOT deleted: the rebuilt day takes only the rows of ``kept``, a SELECT of the others from ``{table}``
        (a subquery), written so that it plans as hash joins however many rows are replaced. DuckDB never rebuilds
        a day.
        """
        self.load_select("events", columns, select)
        return []

    def create_temp(self, table: str, columns: Columns) -> None:
        """A fresh TEMP table (dropped first if this connection already has one)."""
        self.execute(f"DROP TABLE IF EXISTS {table}")
        cols = ", ".join(f"{name} {sql_type(typ)}" for name, typ in columns)
        self.execute(f"CREATE TEMP TABLE {table} ({cols})")

    def close(self) -> None:
        raise NotImplementedError

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) FROM {table}")[0][0])


def parquet_source(conn: Connection, columns: Columns, files: Sequence[Path]) -> str:
    """DuckDB ``SELECT CAST(col AS type) AS col, …`` over ``files`` (union by name), NULL for columns they lack.

    For :meth:`Connection.scan` and :meth:`Connection.load_select` of ``conn``. With no files the SELECT yields no
    rows but keeps the types.
    """
    if not files:
        exprs = ", ".join(f"CAST(NULL AS {sql_type(typ)}) AS {name}" for name, typ in columns)
        return f"SELECT {exprs} WHERE FALSE"
    source = (
        f"read_parquet([{', '.join(literal(p) for p in files)}],"
        " union_by_name = true, hive_partitioning = false)"
    )
    present = {row[0] for row in conn.scan(f"DESCRIBE SELECT * FROM {source}")}
    exprs = ", ".join(
        f"CAST({name} AS {sql_type(typ)}) AS {name}"
        if name in present
        else f"CAST(NULL AS {sql_type(typ)}) AS {name}"
        for name, typ in columns
    )
    return f"SELECT {exprs} FROM {source}"


class DuckDBConnection(Connection):
    dialect: Dialect = "duckdb"

    def __init__(self, path: Path) -> None:
        import duckdb

        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(path))
        self._con.execute("SET TimeZone = 'UTC'")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql, list(params) if params else None)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._con.execute(sql, list(params) if params else None).fetchall()
        return rows

    def query_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._con.execute(sql, list(params) if params else None)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def script(self, sql_text: str) -> None:
        self._con.execute(sql_text)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def scan(self, select: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._con.execute(select).fetchall()
        return rows

    def load_select(self, table: str, columns: Columns, select: str) -> None:
        import duckdb

        try:
            self._con.execute(f"INSERT INTO {table} ({column_list(columns)}) {select}")
        except duckdb.ConstraintException as exc:
            raise KeyConflict(str(exc).splitlines()[0]) from exc

    def close(self) -> None:
        self._con.close()


class PostgresConnection(Connection):
    """psycopg 3 in autocommit mode; :meth:`transaction` opens explicit transactions.

    Parquet reaches PostgreSQL through binary COPY: an in-memory DuckDB reads the file and encodes every row as a
    binary COPY tuple (all in C), and the bytes are streamed into ``COPY … FROM STDIN (FORMAT binary)``. That keeps
    Python out of the per-value path and text parsing out of the server.
    """

    dialect: Dialect = "postgresql"

    def __init__(self, conninfo: str) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(conninfo)
        params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
        try:
            self._conn = psycopg.connect(make_conninfo("", **params), autocommit=True)
        except psycopg.OperationalError as exc:
            from clickstream.core.errors import TransientError

            raise TransientError(f"cannot connect to the warehouse: {exc}") from exc
        self._conn.execute("SET TIME ZONE 'UTC'")
        names = list(SESSION_TIMEOUTS)
        current = self._conn.execute(
            f"SELECT {', '.join('current_setting(%s)' for _ in names)}", names
        ).fetchone()
        for name, value in zip(names, current or (), strict=True):
            if value == "0":
                self._conn.execute(f"SET {name} = '{SESSION_TIMEOUTS[name]}'")
        # Staging tables live in temp buffers: big enough that a run's COPY does not spill to disk (allocated only
        # as used; must be set before the session's first temp table).
        self._conn.execute("SET temp_buffers = '256MB'")
        self._duck: Any = None

    @staticmethod
    def _sql(sql: str, params: Sequence[Any]) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if params else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(self._sql(sql, params), list(params) if params else None)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(self._sql(sql, params), list(params) if params else None).fetchall()

    def query_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._conn.execute(self._sql(sql, params), list(params) if params else None)
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def script(self, sql_text: str) -> None:
        self._conn.execute(sql_text)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def lock(self, key: int) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", [key])

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def _reader(self) -> Any:
        """The in-memory DuckDB that reads Parquet for this connection (opened on first use)."""
        if self._duck is None:
            import duckdb

            self._duck = duckdb.connect()
            self._duck.execute("SET TimeZone = 'UTC'")
            self._duck.execute("SET enable_progress_bar = false")
            self._duck.execute("SET threads = 1")
        return self._duck

    def scan(self, select: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._reader().execute(select).fetchall()
        return rows

    def load_select(self, table: str, columns: Columns, select: str) -> None:
        """DuckDB encodes the rows as binary COPY tuples (its own thread) while this thread sends them (see
        :class:`_BinaryCopy`): the server decodes no text, not even timestamps or numbers."""
        import psycopg

        duck = self._reader().cursor()  # a cursor of its own: usable from the producer thread
        stream = _BinaryCopy(duck, binary_copy_select(columns, select))
        try:
            with (
                self._conn.cursor() as cur,
                cur.copy(f"COPY {table} ({column_list(columns)}) FROM STDIN (FORMAT binary)") as copy,
            ):
                for chunk in stream.chunks():
                    copy.write(chunk)
        except psycopg.errors.UniqueViolation as exc:
            raise KeyConflict(str(exc).splitlines()[0]) from exc
        finally:
            stream.close()
            duck.close()

    def _existing_partitions(self) -> set[str] | None:
        """The names of the partitions of ``events``; None when ``events`` is one table."""
        rows = self.query("SELECT relkind FROM pg_class WHERE oid = to_regclass('events')")
        if not rows or rows[0][0] != "p":
            return None
        return {
            name
            for (name,) in self.query(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = to_regclass('events')"
            )
        }

    def _missing_event_days(self, days: Sequence[date]) -> list[date] | None:
        """The days among ``days`` that have no partition of ``events`` yet; None when ``events`` is one table."""
        existing = self._existing_partitions()
        if existing is None:
            return None
        return [day for day in sorted(set(days)) if partition_name(day) not in existing]

    def prepare_event_days(self, days: Sequence[date]) -> list[date]:
        """Create the missing daily partitions of ``events`` (UTC days of ``event_ts``), empty, in the open transaction.

        Partitions are named ``events_pYYYYMMDD``; the parent's primary key and indexes apply to them. Creating one
        this way locks ``events`` until the transaction ends; the loader uses :meth:`load_events` instead.
        """
        created = self._missing_event_days(days) or []
        for day in created:
            low, high = _day_bounds(day)
            self.execute(
                f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF events"
                f" FOR VALUES FROM ('{low}') TO ('{high}')"
            )
        return created

    def load_events(
        self,
        columns: Columns,
        select: str,
        *,
        rebuild: Sequence[date] = (),
        replaced: str = "FALSE",
        kept: str = "SELECT * FROM {table}",
    ) -> list[date]:
        """COPY the rows into ``events``; a day without a partition, or one this load mostly rewrites, gets its
        partition built from scratch.

        A new day's rows are COPYed into a table of the partition's name that has no index yet, which is then
        attached to ``events``: PostgreSQL builds its key and visitor indexes in one sorted pass instead of
        inserting every row into them. The new days' tables are partitions of a private, index-free
        ``events_loading`` during the COPY (one COPY routes every new day's rows), each with a CHECK of its day's
        bounds that spares the attach a validation scan (dropped afterwards); they are then detached from it and
        attached to ``events``, and ``events_loading`` is dropped. Attaching locks ``events`` only against schema
        changes (SHARE UPDATE EXCLUSIVE), so readers go on; a rollback undoes it all.

        An existing day in ``rebuild`` (see :meth:`event_days_to_rebuild`) is built the same way: its rows that
        the load does not replace (``kept``: those not matching ``replaced``; the caller deleted nothing there)
        are copied (one statement for all such days) next to the new ones into a fresh table, which gets the
        parent's indexes in sorted builds and then takes the old partition's place (:meth:`_swap_partition`), so
        the replaced rows are never deleted one by one from live indexes. Rows of the other existing days land in
        ``events_loading``'s default partition in the same COPY and are inserted into ``events`` from there, so
        DuckDB reads the files once. A repeated key raises :class:`KeyConflict`, as a COPY would.
        """
        import psycopg

        counts = {
            day: n
            for day, n in self.scan(
                f"SELECT CAST(event_ts AS DATE) AS d, count(*) FROM ({select}) GROUP BY d"
            )
        }
        new = self._missing_event_days(list(counts))
        if new is None:  # events is one table
            self.load_select("events", columns, select)
            return []
        rewrite = sorted(set(rebuild) - set(new))
        built = sorted([*new, *rewrite])
        if not built:
            self.load_select("events", columns, select)
            return []
        self.execute(
            f"CREATE TABLE {_LOADING} (LIKE events INCLUDING DEFAULTS) PARTITION BY RANGE (event_ts)"
        )
        for day in built:
            name, (low, high) = _building_name(day, day in rewrite), _day_bounds(day)
            self.execute(
                f"CREATE TABLE {name} PARTITION OF {_LOADING}"
                f" (CONSTRAINT {name}_bounds CHECK (event_ts >= '{low}' AND event_ts < '{high}'))"
                f" FOR VALUES FROM ('{low}') TO ('{high}')"
            )
        everything_built = len(built) == len(counts)
        if not everything_built:  # the other days' rows: inserted into events from here, after the one COPY
            self.execute(f"CREATE TABLE {_LOADING_REST} PARTITION OF {_LOADING} DEFAULT")
        self.load_select(_LOADING, columns, select)
        if rewrite:  # the rebuilt days' kept rows, in one statement (the staged ids are hashed once)
            ranges = " OR ".join(
                f"(event_ts >= '{low}' AND event_ts < '{high}')" for low, high in map(_day_bounds, rewrite)
            )
            self.execute(
                f"INSERT INTO {_LOADING} {kept.format(table=f'(SELECT * FROM events WHERE {ranges})')}"
            )
        for day in built:
            self.execute(f"ALTER TABLE {_LOADING} DETACH PARTITION {_building_name(day, day in rewrite)}")
        try:
            if not everything_built:
                self.execute(f"INSERT INTO events SELECT * FROM {_LOADING_REST}")
            self.execute(f"DROP TABLE {_LOADING}")
            for day in new:
                name, (low, high) = partition_name(day), _day_bounds(day)
                # the key index is built here
                self.execute(
                    f"ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')"
                )
                self.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_bounds")
            for day in rewrite:
                self._index_rewritten_day(day)
        except psycopg.errors.UniqueViolation as exc:
            raise KeyConflict(str(exc).splitlines()[0]) from exc
        for day in rewrite:
            self._swap_partition(day, replaced)
        return new

    def event_days_to_rebuild(self, incoming: dict[date, int], replaced: dict[date, int]) -> list[date]:
        """Existing days whose partition a load should rebuild rather than delete from and insert into.

        A day qualifies when the load brings at least :data:`REWRITE_MIN_ROWS` rows for it and the rows the
        partition keeps (its rows less the ``replaced`` estimate) are fewer than :data:`REWRITE_RATIO` times
        the rows the load takes out and puts in (``replaced`` + ``incoming``): copying a kept row and building
        the indexes over every row then costs less than deleting the replaced rows from live indexes and
        inserting the new ones beside their dead tuples (bench/load, reload case; docs/decisions.md). Days
        without a partition are not listed (they are new: :meth:`load_events` builds them anyway).
        """
        existing = self._existing_partitions() or set()
        out = []
        for day, n in sorted(incoming.items()):
            if n < REWRITE_MIN_ROWS or partition_name(day) not in existing:
                continue
            out_and_in = replaced.get(day, 0) + n
            kept = max(self.count(partition_name(day)) - replaced.get(day, 0), 0)
            if kept < REWRITE_RATIO * out_and_in:
                out.append(day)
        return out

    def _index_rewritten_day(self, day: date) -> None:
        """Give a rebuilt day's new table (new and kept rows) the parent's indexes and key, in sorted builds."""
        table = _building_name(day, True)
        for (definition,) in self.query(
            "SELECT CASE WHEN c.oid IS NOT NULL THEN 'ALTER TABLE {t} ADD ' || pg_get_constraintdef(c.oid)"
            " ELSE regexp_replace(pg_get_indexdef(i.indexrelid), ' INDEX \\S+ ON ONLY \\S+ ', ' INDEX ON {t} ') END"
            " FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid"
            " WHERE i.indrelid = to_regclass('events') ORDER BY i.indexrelid"
        ):
            self.execute(definition.replace("{t}", table))

    def _swap_partition(self, day: date, replaced: str) -> None:
        """Put the day's rebuilt table in place of its partition, keeping the partition's name.

        Detaching takes ACCESS EXCLUSIVE on ``events`` until the commit, so this runs last (the loader writes
        events after everything else) and waits at most :data:`SWAP_LOCK_TIMEOUT` for readers in flight rather
        than queueing every new reader behind it. When readers hold ``events`` longer, the swap is given up (its
        savepoint rolled back) and the day is topped up instead, as an incremental load would: the partition's
        ``replaced`` rows are deleted, then the rebuilt table's rows that it lacks (the new ones) inserted. The
        new table's indexes match the parent's, so attaching them builds nothing, and the bounds CHECK spares the
        attach its scan.
        """
        import psycopg

        name, table, (low, high) = partition_name(day), _building_name(day, True), _day_bounds(day)
        ((previous,),) = self.query("SELECT current_setting('lock_timeout')")
        try:
            with self.savepoint():
                self.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
                self.execute(f"ALTER TABLE events DETACH PARTITION {name}")
        except psycopg.errors.LockNotAvailable:
            self.execute(f"DELETE FROM {name} WHERE {replaced}")
            self.execute(
                f"INSERT INTO {name} SELECT * FROM {table} t WHERE NOT EXISTS"
                f" (SELECT 1 FROM {name} o WHERE o.event_id = t.event_id AND o.event_ts = t.event_ts)"
            )
            self.execute(f"DROP TABLE {table}")
            return
        self.execute("SELECT set_config('lock_timeout', ?, true)", [previous])
        self.execute(f"DROP TABLE {name}")
        self.execute(f"ALTER TABLE events ATTACH PARTITION {table} FOR VALUES FROM ('{low}') TO ('{high}')")
        self.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_bounds")
        self.execute(f"ALTER TABLE {table} RENAME TO {name}")
        for (index,) in self.query(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = to_regclass(?) AND c.relname LIKE ?",
            [name, f"{table}%"],
        ):
            self.execute(f"ALTER INDEX {index} RENAME TO {name}{index[len(table) :]}")

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
            self._duck = None
        self._conn.close()


class _BinaryCopy:
    """PostgreSQL binary COPY data from a DuckDB query, produced by a thread while the caller sends it.

    The producer fetches the encoded tuples (one BLOB per row, see :func:`binary_copy_select`) a chunk at a time,
    joins each chunk into one buffer and hands it over through a small bounded queue, so memory stays flat in the
    number of rows and DuckDB encodes the next chunk while the server takes the last one. A DuckDB error is raised
    to the reader at the end of the data; ``close()`` (the reader failed or finished) stops the producer.
    """

    _END = object()

    def __init__(self, duck: Any, sql: str) -> None:
        self._duck = duck
        self._sql = sql
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_COPY_QUEUE)
        self._closed = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, name="copy-encode", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            if not self._put(_BINARY_SIGNATURE):
                return
            result = self._duck.execute(self._sql)
            while rows := result.fetchmany(_COPY_ROWS):
                if not self._put(b"".join([row[0] for row in rows])):
                    return
            self._put(_BINARY_TRAILER)
        except BaseException as exc:  # handed to the reader
            self._failure = exc
        finally:
            self._put(self._END)

    def chunks(self) -> Iterator[bytes]:
        """The COPY data in order (signature, tuples, trailer); raises DuckDB's error, if any, at the end."""
        while (item := self._queue.get()) is not self._END:
            yield item
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive():
            self._duck.interrupt()
        self._thread.join()


# PostgreSQL's binary COPY format: a signature, flags and header extension, then per row a field count and each
# field as a length (-1: NULL) and its bytes in the type's binary form, then -1 as the trailer.
_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_BINARY_TRAILER = b"\xff\xff"
_COPY_ROWS = 1024  # rows per chunk (an event row is at most a few tens of KiB)
_COPY_QUEUE = 4  # chunks encoded ahead of the sender
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 00:00 UTC, PostgreSQL's epoch, in Unix microseconds


def _blob(data: bytes) -> str:
    """A DuckDB BLOB literal."""
    return "'" + "".join(f"\\x{b:02X}" for b in data) + "'::BLOB"


def _be(expr: str, duck_type: str) -> str:
    """The big-endian bytes of an integer or double (DuckDB's BIT cast is the value's bits, high bit first)."""
    return f"CAST(CAST(CAST({expr} AS {duck_type}) AS BIT) AS BLOB)"


_NULL_FIELD = _blob(b"\xff\xff\xff\xff")
_LEN_4, _LEN_8 = _blob((4).to_bytes(4, "big")), _blob((8).to_bytes(4, "big"))
_TRUE_FIELD, _FALSE_FIELD = _blob(b"\x00\x00\x00\x01\x01"), _blob(b"\x00\x00\x00\x01\x00")


def _binary_field(value: str, typ: str) -> str:
    """A DuckDB expression: one field of a binary COPY tuple (its length, then its bytes; -1 alone for NULL)."""
    base = typ.upper().split("(")[0].strip()
    if base in ("VARCHAR", "TEXT"):
        # PostgreSQL text cannot hold U+0000 (the only character it refuses): it becomes U+FFFD there. The guard
        # costs a memchr per value, the replace a copy (2.5x the CPU when applied to every value).
        raw = f"CAST({value} AS VARCHAR)"
        text = f"CASE WHEN contains({raw}, chr(0)) THEN replace({raw}, chr(0), chr(65533)) ELSE {raw} END"
        field = f"{_be(f'strlen({text})', 'INTEGER')} || encode({text})"
    elif base == "TIMESTAMPTZ":
        micros = f"epoch_us(CAST({value} AS TIMESTAMPTZ)) - {_PG_EPOCH_US}"
        field = f"{_LEN_8} || {_be(micros, 'BIGINT')}"
    elif base in ("DOUBLE", "DOUBLE PRECISION", "FLOAT8"):
        field = f"{_LEN_8} || {_be(value, 'DOUBLE')}"
    elif base in ("INTEGER", "INT", "INT4"):
        field = f"{_LEN_4} || {_be(value, 'INTEGER')}"
    elif base in ("BIGINT", "INT8"):
        field = f"{_LEN_8} || {_be(value, 'BIGINT')}"
    elif base == "DATE":
        days = f"CAST({value} AS DATE) - DATE '2000-01-01'"
        field = f"{_LEN_4} || {_be(days, 'INTEGER')}"
    elif base == "BOOLEAN":
        flag = f"CAST({value} AS BOOLEAN)"
        field = f"CASE WHEN {flag} THEN {_TRUE_FIELD} WHEN NOT {flag} THEN {_FALSE_FIELD} END"
    else:
        raise WarehouseError(f"no binary COPY encoding for column type {typ!r}")
    return f"coalesce({field}, {_NULL_FIELD})"


def binary_copy_select(columns: Columns, select: str) -> str:
    """DuckDB SELECT of one BLOB per row of ``select``: the row as a PostgreSQL binary COPY tuple of ``columns``.

    The select's columns are taken by position and cast to the ``columns`` types (the target table's). The tuple
    is concatenated as a balanced tree, so no row is copied more than a few times.
    """
    parts = [_blob(len(columns).to_bytes(2, "big"))]
    parts += [_binary_field(f"c{i}", typ) for i, (_, typ) in enumerate(columns)]
    while len(parts) > 1:
        parts = [
            " || ".join(parts[i : i + 2]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)
        ]
        parts = [f"({p})" for p in parts]
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    return f"SELECT {parts[0]} FROM ({select}) AS src({aliases})"


_LOADING = "events_loading"  # the loader's private, index-free parent of new days' tables (never committed)
_LOADING_REST = (
    "events_loading_rest"  # its default partition: rows of the days not built, inserted into events
)
# An existing day's partition is rebuilt when a load brings at least REWRITE_MIN_ROWS rows for it and the rows it
# keeps are fewer than REWRITE_RATIO times the rows the load takes out of it and puts in (see
# PostgresConnection.event_days_to_rebuild; the ratio is measured in docs/decisions.md).
REWRITE_MIN_ROWS = 10_000
REWRITE_RATIO = 0.75
SWAP_LOCK_TIMEOUT = "5s"  # the longest a rebuilt day's swap waits for readers of events (then: top-up)


def _building_name(day: date, rewrite: bool) -> str:
    """The table a day's rows are built in: the partition's own name for a new day, a private one for a rewrite."""
    return f"{partition_name(day)}_rw" if rewrite else partition_name(day)


def partition_name(day: date) -> str:
    """The ``events`` partition holding ``day`` (UTC) on PostgreSQL."""
    return f"events_p{day:%Y%m%d}"


def _day_bounds(day: date) -> tuple[str, str]:
    """The first instant of ``day`` (UTC) and of the next day, as timestamptz literals."""
    return f"{day.isoformat()} 00:00:00+00", f"{(day + timedelta(days=1)).isoformat()} 00:00:00+00"


@dataclass(frozen=True)
class Warehouse:
    """Where the warehouse lives. ``connect()`` opens a connection; nothing is opened before that."""

    dialect: Dialect
    target: str  # the DuckDB file path, or a libpq connection string

    @property
    def path(self) -> Path | None:
        """The DuckDB file, when the warehouse is one (the report is also written next to it)."""
        return Path(self.target) if self.dialect == "duckdb" else None

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        conn: Connection = (
            DuckDBConnection(Path(self.target))
            if self.dialect == "duckdb"
            else PostgresConnection(self.target)
        )
        try:
            yield conn
        finally:
            conn.close()

    def describe(self) -> str:
        """A printable name that never shows a password."""
        if self.dialect == "duckdb":
            return f"duckdb:///{self.target.lstrip('/')}"
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(self.target)
        return f"postgresql://{params.get('host', '')}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def open_warehouse(url: str) -> Warehouse:
    """The warehouse a URL names (see the module docstring)."""
    url = url.strip()
    if url.startswith("duckdb:"):
        path = urlparse(url).path
        if not path or not Path(path).is_absolute():
            raise WarehouseError(
                f"a DuckDB warehouse URL needs an absolute path (duckdb:///abs/file.duckdb), got {url!r}"
            )
        return Warehouse("duckdb", str(Path(path)))
    if url.startswith(("postgresql://", "postgres://")) or ("=" in url and "://" not in url):
        return Warehouse("postgresql", url)
    if "://" not in url and url.endswith(".duckdb"):
        return Warehouse("duckdb", str(Path(url).resolve()))
    raise WarehouseError(f"unsupported warehouse URL {url!r}: use duckdb:///path.duckdb or postgresql://…")


def dsn_from_secret(secret_string: str, *, sslmode: str = "require", sslrootcert: str = "") -> str:
    """A libpq connection string from a secret: a DSN, or JSON with host/port/username/password/dbname.

    TLS (:func:`with_tls`): the stronger of ``sslmode`` and the secret's own mode; ``sslrootcert`` (a CA bundle
    path, or ``system``) unless the secret names one.
    """
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    text = secret_string.strip()
    params: dict[str, Any]
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WarehouseError("the warehouse secret is neither a DSN nor valid JSON") from exc
        engine = str(data.get("engine", "postgres")).lower()
        if engine not in ("postgres", "postgresql", "aurora-postgresql"):
            raise WarehouseError(
                f"the warehouse secret names engine {engine!r}; only PostgreSQL is supported"
            )
        if data.get("dsn") or data.get("url"):
            params = conninfo_to_dict(data.get("dsn") or data["url"])
        else:
            if not data.get("host"):
                raise WarehouseError("the warehouse secret's JSON has no host")
            params = {
                "host": data["host"],
                "port": str(data.get("port", 5432)),
                "user": data.get("username") or data.get("user"),
                "password": data.get("password"),
                "dbname": data.get("dbname") or data.get("database") or "postgres",
            }
            if data.get("sslmode"):
                params["sslmode"] = data["sslmode"]
    else:
        try:
            params = conninfo_to_dict(text)
        except Exception as exc:  # psycopg.ProgrammingError: an unparseable DSN
            raise WarehouseError("the warehouse secret is not a valid PostgreSQL DSN") from exc
    params = {k: v for k, v in params.items() if v is not None}
    return make_conninfo(**with_tls(params, sslmode, sslrootcert))


def with_tls(params: dict[str, Any], sslmode: str, sslrootcert: str = "") -> dict[str, Any]:
    """Connection parameters with TLS at least as strict as ``sslmode``.

    The DSN's own ``sslmode`` is kept when it is stricter; ``sslrootcert`` is added when the DSN has none. The
    verifying modes (``verify-ca``, ``verify-full``) need a root certificate: without one libpq would look for
    ``~/.postgresql/root.crt``, which a Lambda does not have, so the configuration is refused here instead.
    """
    if sslmode not in SSL_MODES:
        raise WarehouseError(f"unknown sslmode {sslmode!r}; use one of {', '.join(SSL_MODES)}")
    own = params.get("sslmode")
    if own is not None and own not in SSL_MODES:
        raise WarehouseError(f"the warehouse DSN has an unknown sslmode {own!r}")
    out = dict(params)
    out["sslmode"] = max(own or sslmode, sslmode, key=SSL_MODES.index)
    if sslrootcert and not out.get("sslrootcert"):
        out["sslrootcert"] = sslrootcert
    if out["sslmode"] in ("verify-ca", "verify-full") and not out.get("sslrootcert"):
        raise WarehouseError(
            f"sslmode {out['sslmode']} needs a root certificate: set WAREHOUSE_SSLROOTCERT"
            " (the path of a CA bundle such as RDS's, or 'system')"
        )
    return out


def warehouse_from_secret(secret_arn: str, *, sslmode: str = "require", sslrootcert: str = "") -> Warehouse:
    from clickstream.adapters.aws import client

    secret = client("secretsmanager").get_secret_value(SecretId=secret_arn)
    text = secret.get("SecretString")
    if not text:
        raise WarehouseError("the warehouse secret has no SecretString")
    return Warehouse("postgresql", dsn_from_secret(text, sslmode=sslmode, sslrootcert=sslrootcert))


def warehouse_from_settings(settings: Settings) -> Warehouse:
    """``Settings.warehouse_url`` when given, else the Secrets Manager secret ``warehouse_secret_arn``.

    The secret's DSN gets the TLS of ``warehouse_sslmode`` / ``warehouse_sslrootcert`` (see :func:`with_tls`); a
    URL is used as written (local runs, where the operator spells out what they want).
    """
    if settings.warehouse_url:
        return open_warehouse(settings.warehouse_url)
    if settings.warehouse_secret_arn:
        return warehouse_from_secret(
            settings.warehouse_secret_arn,
            sslmode=settings.warehouse_sslmode,
            sslrootcert=settings.warehouse_sslrootcert,
        )
    raise WarehouseError("no warehouse configured: set WAREHOUSE_URL or WAREHOUSE_SECRET_ARN")
