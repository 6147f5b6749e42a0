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
warehouse runs it itself (``INSERT … SELECT``); PostgreSQL gets its rows by ``COPY … FROM STDIN``, streamed from an
in-memory DuckDB writing CSV into an OS pipe while the rows are sent (both sides in C, concurrently, no temp file).
"""

from __future__ import annotations

import json
import os
import tempfile
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

_COPY_CHUNK = 1 << 20

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

    def load_events(self, columns: Columns, select: str) -> list[date]:
        """Append the rows of a DuckDB ``select`` (``columns`` of ``events``) to ``events``, like :meth:`load_select`.

        Returns the UTC days whose storage this call created (PostgreSQL: new daily partitions, filled before
        their indexes are built; see :meth:`PostgresConnection.load_events`).
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

    Parquet reaches PostgreSQL through COPY: an in-memory DuckDB reads the file and writes CSV (all in C), and the
    bytes are streamed into ``COPY … FROM STDIN``. That keeps Python out of the per-row path.
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
        """DuckDB writes the rows as CSV (its own thread) while this thread COPYs them in (see :class:`_Spool`)."""
        import psycopg

        duck = self._reader().cursor()  # a cursor of its own: usable from the producer thread
        with tempfile.TemporaryDirectory(prefix="clickstream-copy-") as tmp:
            spool = _Spool(Path(tmp) / f"{table}.csv")
            producer = threading.Thread(
                target=spool.produce,
                args=(
                    lambda target: duck.execute(
                        f"COPY ({select}) TO {literal(target)} (FORMAT csv, HEADER false)"
                    ),
                ),
                name=f"copy-{table}",
                daemon=True,
            )
            producer.start()
            try:
                with (
                    self._conn.cursor() as cur,
                    cur.copy(f"COPY {table} ({column_list(columns)}) FROM STDIN (FORMAT csv)") as copy,
                ):
                    for chunk in spool.chunks():
                        copy.write(chunk)
            except psycopg.errors.UniqueViolation as exc:
                raise KeyConflict(str(exc).splitlines()[0]) from exc
            finally:
                spool.cancel()
                producer.join()
                duck.close()

    def _missing_event_days(self, days: Sequence[date]) -> list[date] | None:
        """The days among ``days`` that have no partition of ``events`` yet; None when ``events`` is one table."""
        rows = self.query("SELECT relkind FROM pg_class WHERE oid = to_regclass('events')")
        if not rows or rows[0][0] != "p":
            return None
        existing = {
            name
            for (name,) in self.query(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = to_regclass('events')"
            )
        }
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

    def load_events(self, columns: Columns, select: str) -> list[date]:
        """COPY the rows into ``events``; a day without a partition gets one built for this load's rows.

        A new day's rows are COPYed into a table of the partition's name that has no index yet, which is then
        attached to ``events``: PostgreSQL builds its key and visitor indexes in one sorted pass instead of
        inserting every row into them. The new days' tables are partitions of a private, index-free
        ``events_loading`` during the COPY (one COPY routes every new day's rows), each with a CHECK of its day's
        bounds that spares the attach a validation scan (dropped afterwards); they are then detached from it and
        attached to ``events``, and ``events_loading`` is dropped. Attaching locks ``events`` only against schema
        changes (SHARE UPDATE EXCLUSIVE), so readers go on; a rollback undoes it all. Rows of days that already
        have a partition go through ``events`` in a second COPY. A key repeated among the new rows raises
        :class:`KeyConflict`, as a COPY would.
        """
        import psycopg

        days = [d for (d,) in self.scan(f"SELECT DISTINCT CAST(event_ts AS DATE) FROM ({select})")]
        new = self._missing_event_days(days)
        if not new:
            self.load_select("events", columns, select)
            return []
        listed = ", ".join(f"DATE '{day.isoformat()}'" for day in new)
        self.execute(
            f"CREATE TABLE {_LOADING} (LIKE events INCLUDING DEFAULTS) PARTITION BY RANGE (event_ts)"
        )
        for day in new:
            name, (low, high) = partition_name(day), _day_bounds(day)
            self.execute(
                f"CREATE TABLE {name} PARTITION OF {_LOADING}"
                f" (CONSTRAINT {name}_bounds CHECK (event_ts >= '{low}' AND event_ts < '{high}'))"
                f" FOR VALUES FROM ('{low}') TO ('{high}')"
            )
        everything_new = len(new) == len(days)
        rows = (
            select
            if everything_new
            else f"SELECT * FROM ({select}) WHERE CAST(event_ts AS DATE) IN ({listed})"
        )
        self.load_select(_LOADING, columns, rows)
        for day in new:
            name, (low, high) = partition_name(day), _day_bounds(day)
            self.execute(f"ALTER TABLE {_LOADING} DETACH PARTITION {name}")
            try:
                self.execute(
                    f"ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')"
                )
            except psycopg.errors.UniqueViolation as exc:  # the key index is built here
                raise KeyConflict(str(exc).splitlines()[0]) from exc
            self.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_bounds")
        self.execute(f"DROP TABLE {_LOADING}")
        if not everything_new:
            self.load_select(
                "events", columns, f"SELECT * FROM ({select}) WHERE CAST(event_ts AS DATE) NOT IN ({listed})"
            )
        return new

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
            self._duck = None
        self._conn.close()


class _Spool:
    """CSV from DuckDB, streamed to the COPY as it is written, without ever making DuckDB wait.

    DuckDB writes into an OS pipe; a pump thread moves the bytes into a temp file and tells the reader how far the
    file is complete; the reader (the COPY) follows it. A writer blocked on a full pipe costs DuckDB CPU (it keeps
    polling), so the pipe is drained at once and the file absorbs the difference in speed. Every way out ends all
    threads: a DuckDB error is raised to the reader at the end of the data; ``cancel()`` (the reader failed) closes
    the pipe, so DuckDB's next write fails and its statement ends.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cond = threading.Condition()
        self._size = 0
        self._done = False
        self._cancelled = False
        self._failure: BaseException | None = None
        path.touch()

    def produce(self, write_to: Any) -> None:
        """Run ``write_to('/dev/fd/N')`` (DuckDB's COPY … TO) and pump what it writes into the file."""
        read_fd, write_fd = os.pipe()
        _widen_pipe(write_fd)
        pump = threading.Thread(target=self._pump, args=(read_fd,), name="copy-pump", daemon=True)
        pump.start()
        try:
            write_to(f"/dev/fd/{write_fd}")
        except BaseException as exc:  # handed to the reader
            with self._cond:
                if not self._cancelled:
                    self._failure = exc
        finally:
            os.close(write_fd)
            pump.join()

    def _pump(self, read_fd: int) -> None:
        try:
            with os.fdopen(read_fd, "rb", buffering=0) as src, open(self._path, "ab", buffering=0) as out:
                while not self._cancelled and (chunk := src.read(_COPY_CHUNK)):
                    out.write(chunk)
                    with self._cond:
                        self._size += len(chunk)
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def chunks(self) -> Iterator[bytes]:
        """The bytes in order, as they become available; raises DuckDB's error, if any, at the end."""
        pos = 0
        with open(self._path, "rb", buffering=0) as fh:
            while True:
                with self._cond:
                    while self._size <= pos and not self._done:
                        self._cond.wait()
                    size, done, failure = self._size, self._done, self._failure
                if size > pos:
                    data = fh.read(min(size - pos, _COPY_CHUNK))
                    pos += len(data)
                    yield data
                elif done:
                    if failure is not None:
                        raise failure
                    return

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True


def _widen_pipe(fd: int) -> None:
    """A 1 MiB pipe buffer (Linux; the default 64 KiB means many small reads and COPY messages)."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _COPY_CHUNK)
    except (ImportError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size: keep the default
        pass


_LOADING = "events_loading"  # the loader's private, index-free parent of new days' tables (never committed)


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
