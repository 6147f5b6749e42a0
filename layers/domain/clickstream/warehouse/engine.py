"""The warehouse adapter: a connection to DuckDB or PostgreSQL chosen by URL, behind one small interface.

URLs: ``duckdb:///abs/path/warehouse.duckdb`` (the file and its folder are created) or ``postgresql://…`` /
``postgres://…`` / a libpq ``key=value`` string. In the cloud the DSN comes from a Secrets Manager secret
(``Settings.warehouse_secret_arn``): either a DSN string or RDS-style JSON with host/port/username/password/dbname.
Secrets get ``sslmode=require`` unless they say otherwise.

SQL is written once with ``?`` placeholders; the PostgreSQL connection rewrites them for psycopg. Both engines run
with the session time zone UTC, so timestamps go in and come out as aware UTC datetimes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from clickstream.core.config import Settings
from clickstream.core.errors import DomainError

Dialect = Literal["duckdb", "postgresql"]
Columns = Sequence[tuple[str, str]]

_COPY_CHUNK = 1 << 20


class WarehouseError(DomainError):
    """The warehouse is misconfigured or refused an operation on purpose (bad URL, bad secret, bad migration)."""

    code = "warehouse_error"


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

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def query_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def script(self, sql_text: str) -> None:
        """Run several ``;``-separated statements (no parameters): a migration file."""
        raise NotImplementedError

    def transaction(self):  # -> ContextManager[None]
        raise NotImplementedError

    def lock(self, key: int) -> None:
        """Serialize writers on ``key`` until the current transaction ends (PostgreSQL advisory lock)."""

    def stage_parquet(self, table: str, columns: Columns, files: Sequence[Path]) -> int:
        """Create TEMP ``table`` with ``columns`` and fill it from Parquet ``files``; returns its row count.

        Columns a file lacks are null. Call inside a transaction: the table goes away with a rollback.
        """
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _create_stage(self, table: str, columns: Columns) -> None:
        self.execute(f"DROP TABLE IF EXISTS {table}")
        cols = ", ".join(f"{name} {sql_type(typ)}" for name, typ in columns)
        self.execute(f"CREATE TEMP TABLE {table} ({cols})")

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) FROM {table}")[0][0])


def _parquet_select(duck: Any, columns: Columns, path: Path) -> str:
    """``SELECT CAST(col AS type) …`` over one Parquet file, with NULL for the columns it does not have."""
    source = f"read_parquet({_literal(str(path))})"
    present = {row[0] for row in duck.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    exprs = [
        f"CAST({name} AS {sql_type(typ)}) AS {name}"
        if name in present
        else f"CAST(NULL AS {sql_type(typ)}) AS {name}"
        for name, typ in columns
    ]
    return f"SELECT {', '.join(exprs)} FROM {source}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBConnection(Connection):
    dialect: Dialect = "duckdb"

    def __init__(self, path: Path) -> None:
        import duckdb

        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(path))
        self._con.execute("SET TimeZone = 'UTC'")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql, list(params) if params else None)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._con.execute(sql, list(params) if params else None).fetchall()

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

    def stage_parquet(self, table: str, columns: Columns, files: Sequence[Path]) -> int:
        self._create_stage(table, columns)
        for path in files:
            self._con.execute(
                f"INSERT INTO {table} ({column_list(columns)}) {_parquet_select(self._con, columns, path)}"
            )
        return self.count(table)

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

        try:
            self._conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            from clickstream.core.errors import TransientError

            raise TransientError(f"cannot connect to the warehouse: {exc}") from exc
        self._conn.execute("SET TIME ZONE 'UTC'")
        # Staging tables live in temp buffers: big enough that a run's COPY does not spill to disk (allocated only
        # as used; must be set before the session's first temp table).
        self._conn.execute("SET temp_buffers = '256MB'")

    @staticmethod
    def _sql(sql: str, params: Sequence[Any]) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if params else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(self._sql(sql, params), list(params) if params else None)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
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

    def stage_parquet(self, table: str, columns: Columns, files: Sequence[Path]) -> int:
        import duckdb

        self._create_stage(table, columns)
        if files:
            duck = duckdb.connect()
            try:
                duck.execute("SET TimeZone = 'UTC'")
                with tempfile.TemporaryDirectory(prefix="clickstream-copy-") as tmp:
                    for i, path in enumerate(files):
                        csv_path = Path(tmp) / f"{table}-{i}.csv"
                        select = _parquet_select(duck, columns, path)
                        duck.execute(
                            f"COPY ({select}) TO {_literal(str(csv_path))} (FORMAT csv, HEADER false)"
                        )
                        self._copy_csv(table, columns, csv_path)
            finally:
                duck.close()
        # Statistics on the join keys only: the planner needs them for the deletes; the rest would cost seconds.
        self.execute(
            f"ANALYZE {table} ({', '.join(k for k in ('anonymous_id', 'event_id', 'session_id') if k in dict(columns))})"
        )
        return self.count(table)

    def _copy_csv(self, table: str, columns: Columns, csv_path: Path) -> None:
        with (
            self._conn.cursor() as cur,
            cur.copy(f"COPY {table} ({column_list(columns)}) FROM STDIN (FORMAT csv)") as copy,
            open(csv_path, "rb") as fh,
        ):
            while chunk := fh.read(_COPY_CHUNK):
                copy.write(chunk)

    def close(self) -> None:
        self._conn.close()


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


def dsn_from_secret(secret_string: str) -> str:
    """A libpq connection string from a secret: a DSN, or JSON with host/port/username/password/dbname.

    ``sslmode=require`` is added unless the secret sets an sslmode itself.
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
    params.setdefault("sslmode", "require")
    return make_conninfo(**params)


def warehouse_from_secret(secret_arn: str) -> Warehouse:
    from clickstream.adapters.aws import client

    secret = client("secretsmanager").get_secret_value(SecretId=secret_arn)
    text = secret.get("SecretString")
    if not text:
        raise WarehouseError("the warehouse secret has no SecretString")
    return Warehouse("postgresql", dsn_from_secret(text))


def warehouse_from_settings(settings: Settings) -> Warehouse:
    """``Settings.warehouse_url`` when given, else the Secrets Manager secret ``warehouse_secret_arn``."""
    if settings.warehouse_url:
        return open_warehouse(settings.warehouse_url)
    if settings.warehouse_secret_arn:
        return warehouse_from_secret(settings.warehouse_secret_arn)
    raise WarehouseError("no warehouse configured: set WAREHOUSE_URL or WAREHOUSE_SECRET_ARN")
