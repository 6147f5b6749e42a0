"""A minimal migration runner for both engines.

Files in ``migrations/`` are named ``NNNN_name.sql`` (one SQL text for both engines) or, only where the engines
cannot share the text, ``NNNN_name.duckdb.sql`` plus ``NNNN_name.postgresql.sql`` (both must exist). Each version
is applied once, in order, in its own transaction together with its row in ``schema_migrations`` (version, name,
checksum, applied_at). A file edited after it was applied is refused (checksum mismatch): write a new migration.
On PostgreSQL an advisory lock serializes concurrent runners (several Lambdas starting at once).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from clickstream.adapters.warehouse import Connection, WarehouseError
from clickstream.core import clock

_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<engine>duckdb|postgresql))?\.sql$")
_LOCK_KEY = 0x636C6B73  # "clks": the advisory lock every migration runner takes
_ENGINES = ("duckdb", "postgresql")
# Checksums a version also answers to: texts applied by earlier releases that differ from today's file in comments
# only (0001's comment on daily_kpis was reworded). Any other edit is still refused.
_EARLIER_CHECKSUMS: dict[int, frozenset[str]] = {
    1: frozenset({"96e528f7d4de4ded005f21cccfefa02c20419bf3219ade4aa7d033bd82e2b172"}),
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def migrations_dir() -> Path:
    return Path(str(resources.files("clickstream.warehouse") / "migrations"))


def discover(dialect: str, directory: Path | None = None) -> list[Migration]:
    """The migrations for ``dialect``, in version order (validating the folder's naming rules)."""
    directory = directory or migrations_dir()
    shared: dict[int, tuple[str, Path]] = {}
    specific: dict[int, dict[str, tuple[str, Path]]] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise WarehouseError(f"migration file {path.name!r} does not follow NNNN_name[.engine].sql")
        version, name, engine = int(match["version"]), match["name"], match["engine"]
        if engine is None:
            if version in specific:
                raise WarehouseError(f"migration version {version:04d} is both shared and engine-specific")
            if version in shared:
                raise WarehouseError(f"migration version {version:04d} is defined twice")
            shared[version] = (name, path)
        else:
            if version in shared:
                raise WarehouseError(f"migration version {version:04d} is both shared and engine-specific")
            specific.setdefault(version, {})[engine] = (name, path)
    for version, files in specific.items():
        missing = [e for e in _ENGINES if e not in files]
        if missing:
            raise WarehouseError(f"migration version {version:04d} has no file for {', '.join(missing)}")
    out: list[Migration] = []
    for version in sorted({*shared, *specific}):
        name, path = shared[version] if version in shared else specific[version][dialect]
        out.append(Migration(version, name, path.read_text(encoding="utf-8")))
    return out


def applied(conn: Connection) -> dict[int, str]:
    """Applied versions and their checksums."""
    _ensure_table(conn)
    return {int(v): str(c) for v, c in conn.query("SELECT version, checksum FROM schema_migrations")}


def migrate(conn: Connection, directory: Path | None = None) -> list[int]:
    """Apply every pending migration; returns the versions applied now (empty when up to date)."""
    pending = discover(conn.dialect, directory)
    done = applied(conn)
    for m in pending:
        if m.version in done and done[m.version] not in {m.checksum, *_EARLIER_CHECKSUMS.get(m.version, ())}:
            raise WarehouseError(
                f"migration {m.version:04d}_{m.name} changed after it was applied; add a new migration instead"
            )
    now_applied: list[int] = []
    for m in pending:
        if m.version in done:
            continue
        with conn.transaction():
            conn.lock(_LOCK_KEY)
            # Another runner may have applied it while this one waited for the lock.
            if conn.query("SELECT 1 FROM schema_migrations WHERE version = ?", [m.version]):
                continue
            conn.script(m.sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                [m.version, m.name, m.checksum, clock.now()],
            )
        now_applied.append(m.version)
    return now_applied


def _ensure_table(conn: Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, checksum VARCHAR NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL)"
    )
