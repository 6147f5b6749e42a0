"""Migrations on both engines: applied once, re-runnable, the same model."""

from __future__ import annotations

import shutil

import pytest

from clickstream.adapters.warehouse import open_warehouse
from clickstream.core.schema import EVENT_COLUMNS, SESSION_COLUMNS, WAREHOUSE_EVENT_COLUMNS
from clickstream.warehouse.loader import RunRecord, load_run
from clickstream.warehouse.migrate import applied, discover, migrate, migrations_dir
from tests.unit.warehouse.factory import store_day, write_run

_TYPES = {
    "varchar": "VARCHAR",
    "character varying": "VARCHAR",
    "timestamp with time zone": "TIMESTAMPTZ",
    "double": "DOUBLE",
    "double precision": "DOUBLE",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "date": "DATE",
}

VIEWS = {
    "human_sessions",
    "funnel_daily",
    "channel_performance",
    "device_breakdown",
    "landing_pages",
    "revenue_by_currency",
    "retention_weekly",
    "product_events",
    "product_daily",
    "top_products",
}


def test_migrations_are_applied_once_and_rerunnable(warehouse):
    # Given a migrated warehouse (the fixture migrated it)
    with warehouse.connect() as conn:
        # When migrate runs again
        again = migrate(conn)
        # Then nothing is applied twice and every shipped version is recorded once
        assert again == []
        assert sorted(applied(conn)) == [m.version for m in discover(warehouse.dialect)]
        assert conn.query("SELECT count(*) FROM schema_migrations")[0][0] == len(discover(warehouse.dialect))


def test_both_engines_get_the_same_tables_and_views(warehouse):
    with warehouse.connect() as conn:

        def columns(table):
            rows = conn.query(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = ? ORDER BY ordinal_position",
                [table],
            )
            return [(n, _TYPES[t.lower()]) for n, t in rows]

        assert columns("events") == list(WAREHOUSE_EVENT_COLUMNS)
        assert columns("sessions") == [*SESSION_COLUMNS, ("session_date", "DATE")]
        views = {r[0] for r in conn.query("SELECT table_name FROM information_schema.views")}
        assert views >= VIEWS
        for view in VIEWS:
            assert conn.query(f"SELECT count(*) FROM {view}") == [(0,)]


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0006_leaves_the_lake_only_columns_and_keeps_every_row(engine, request, tmp_path):
    # Given a warehouse at version 0005 (every sessionized column) holding the store day (with 0008's run-cost
    # columns too, which today's loader records)
    older = tmp_path / "migrations"
    older.mkdir()
    for path in migrations_dir().glob("*.sql"):
        if int(path.name[:4]) <= 5 or int(path.name[:4]) == 8:
            shutil.copy(path, older / path.name)
    url = f"duckdb://{tmp_path}/w.duckdb" if engine == "duckdb" else request.getfixturevalue("pg_database")
    kept = ", ".join(name for name, _ in WAREHOUSE_EVENT_COLUMNS)
    events, sessions = store_day()
    with open_warehouse(url).connect() as conn:
        migrate(conn, older)
        load_run(conn, write_run(tmp_path / "r", events, sessions), RunRecord("r1"))
        before = sorted(conn.query(f"SELECT {kept} FROM events"))
        products = conn.query("SELECT * FROM top_products ORDER BY product_id")
        assert len(before) == len(events) and products
        # When the shipped migrations are applied
        assert migrate(conn) == [6]
        # Then events has every row with the same values, the views over it answer the same, and the lake-only
        # columns are gone
        assert sorted(conn.query(f"SELECT {kept} FROM events")) == before
        assert conn.query("SELECT * FROM top_products ORDER BY product_id") == products
        all_names = ", ".join(name for name, _ in EVENT_COLUMNS)
        with pytest.raises(Exception, match=r"user_agent|received_at|client_session_id"):
            conn.query(f"SELECT {all_names} FROM events")
        # And a load after the migration replaces the day as before
        load_run(conn, write_run(tmp_path / "r", events, sessions), RunRecord("r1"))
        assert sorted(conn.query(f"SELECT {kept} FROM events")) == before
