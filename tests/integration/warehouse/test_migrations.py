"""Migrations on both engines: applied once, re-runnable, the same model."""

from __future__ import annotations

import shutil
from datetime import date

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
    "money_events",
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
        assert migrate(conn)[:1] == [6]
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


_KPIS_0006 = """
INSERT INTO daily_kpis
SELECT session_date, count(*), count(DISTINCT anonymous_id), count(DISTINCT user_id),
       count(*) FILTER (WHERE engaged), count(*) FILTER (WHERE purchased), 0.5, 0.5, avg(duration_s), 2.0, 0.25,
       COALESCE(sum(orders), 0), COALESCE(sum(revenue) FILTER (WHERE currency = 'USD' AND revenue < 1e9), 0), NULL, 'USD'
FROM human_sessions GROUP BY session_date
"""


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_0007_recomputes_the_money_of_an_existing_warehouse(engine, request, tmp_path):
    from clickstream.warehouse.kpis import KPI_COLUMNS, REVENUE_COLUMNS, recompute_daily_kpis
    from tests.unit.warehouse.factory import second_day

    # Given a warehouse at version 0006 holding two days, its daily_kpis in the old shape (net `revenue`) (with
    # 0008's run-cost columns too, which today's loader records)
    older = tmp_path / "migrations"
    older.mkdir()
    for path in migrations_dir().glob("*.sql"):
        if int(path.name[:4]) <= 6 or int(path.name[:4]) == 8:
            shutil.copy(path, older / path.name)
    url = f"duckdb://{tmp_path}/w.duckdb" if engine == "duckdb" else request.getfixturevalue("pg_database")
    events, sessions = store_day()
    more_events, more_sessions = second_day()
    with open_warehouse(url).connect() as conn:
        migrate(conn, older)
        load_run(
            conn, write_run(tmp_path / "r", events + more_events, sessions + more_sessions), RunRecord("r1")
        )
        conn.execute(_KPIS_0006)
        carried = [
            c for c in KPI_COLUMNS if c not in ("orders", "gross_revenue", "refunds", "net_revenue", "aov")
        ]
        kept = sorted(conn.query(f"SELECT day, {', '.join(carried)} FROM daily_kpis"))
        # When the shipped migrations are applied
        assert 7 in migrate(conn)
        # Then the session KPIs are carried over, and the money equals what a recompute of those days gives
        assert sorted(conn.query(f"SELECT day, {', '.join(carried)} FROM daily_kpis")) == kept
        money = "SELECT day, orders, gross_revenue, refunds, net_revenue, aov FROM daily_kpis ORDER BY day"
        per_currency = f"SELECT {', '.join(REVENUE_COLUMNS)} FROM daily_revenue ORDER BY day, currency"
        migrated, migrated_per_currency = conn.query(money), conn.query(per_currency)
        assert [r[0] for r in migrated] == [date(2026, 3, 2), date(2026, 3, 3)]
        assert len(migrated_per_currency) == 3 and conn.query("SELECT count(*) FROM revenue_by_currency") == [
            (3,)
        ]
        recompute_daily_kpis(conn, ["2026-03-02", "2026-03-03"], "USD")
        assert conn.query(money) == migrated
        assert conn.query(per_currency) == migrated_per_currency
