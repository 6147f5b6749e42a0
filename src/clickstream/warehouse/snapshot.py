"""A content hash of every warehouse table, to prove that a re-run changed nothing.

Rows are compared as values (sorted, so physical order does not matter); the hash is per engine (DuckDB and
PostgreSQL return slightly different Python types for the same value).
"""

from __future__ import annotations

import hashlib

from clickstream.adapters.warehouse import Connection

TABLES = ("events", "sessions", "users", "daily_kpis", "daily_revenue", "pipeline_runs")


def table_digest(conn: Connection, table: str) -> str:
    """sha256 over the table's rows (name/value pairs), sorted by their text form."""
    if table not in TABLES:
        raise ValueError(f"unknown warehouse table {table!r}")
    rows = conn.query_dicts(f"SELECT * FROM {table}")
    lines = sorted(repr(sorted(row.items())) for row in rows)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def warehouse_digest(conn: Connection) -> dict[str, str]:
    """``{table: digest}`` for every table of the model."""
    return {table: table_digest(conn, table) for table in TABLES}
