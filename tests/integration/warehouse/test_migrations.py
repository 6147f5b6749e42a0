"""Migrations on both engines: applied once, re-runnable, the same model."""

from __future__ import annotations

from clickstream.core.schema import SESSION_COLUMNS, WAREHOUSE_EVENT_COLUMNS
from clickstream.warehouse.migrate import applied, discover, migrate

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
