"""The table digest and the KPI query's shape (DuckDB)."""

from __future__ import annotations

import pytest

from clickstream.adapters.warehouse import open_warehouse
from clickstream.core import sql
from clickstream.warehouse.kpis import kpi_params, kpi_totals
from clickstream.warehouse.migrate import migrate
from clickstream.warehouse.snapshot import table_digest, warehouse_digest


@pytest.fixture
def conn(tmp_path):
    with open_warehouse(f"duckdb://{tmp_path}/w.duckdb").connect() as c:
        migrate(c)
        yield c


def test_digest_ignores_row_order_but_not_values(conn):
    conn.execute(
        "INSERT INTO users VALUES ('a', 'u1', TIMESTAMPTZ '2026-03-01 10:00:00+00', TIMESTAMPTZ '2026-03-01 11:00:00+00')"
    )
    conn.execute(
        "INSERT INTO users VALUES ('b', 'u2', TIMESTAMPTZ '2026-03-01 10:00:00+00', TIMESTAMPTZ '2026-03-01 11:00:00+00')"
    )
    first = table_digest(conn, "users")
    # Same rows inserted in the other order: same digest
    conn.execute("DELETE FROM users")
    conn.execute(
        "INSERT INTO users VALUES ('b', 'u2', TIMESTAMPTZ '2026-03-01 10:00:00+00', TIMESTAMPTZ '2026-03-01 11:00:00+00')"
    )
    conn.execute(
        "INSERT INTO users VALUES ('a', 'u1', TIMESTAMPTZ '2026-03-01 10:00:00+00', TIMESTAMPTZ '2026-03-01 11:00:00+00')"
    )
    assert table_digest(conn, "users") == first
    # One microsecond changed: another digest
    conn.execute(
        "UPDATE users SET last_seen = TIMESTAMPTZ '2026-03-01 11:00:00.000001+00' WHERE anonymous_id = 'a'"
    )
    assert table_digest(conn, "users") != first


def test_digest_covers_every_table_and_refuses_others(conn):
    assert set(warehouse_digest(conn)) == {
        "events",
        "sessions",
        "users",
        "daily_kpis",
        "daily_revenue",
        "pipeline_runs",
    }
    with pytest.raises(ValueError, match="unknown"):
        table_digest(conn, "schema_migrations; DROP TABLE events")


def test_totals_of_an_empty_warehouse_are_zero_and_rates_undefined(conn):
    totals = kpi_totals(conn, "USD")
    money = (str(totals["gross_revenue"]), str(totals["refunds"]), str(totals["net_revenue"]))
    assert (totals["sessions"], totals["orders"], money) == (0, 0, ("0.00", "0.00", "0.00"))
    assert totals["engagement_rate"] is None and totals["aov"] is None and totals["pages_per_session"] is None
    assert kpi_totals(conn, "USD", days=[])["sessions"] == 0


def test_kpi_query_binds_one_parameter_per_placeholder():
    kpis = sql.load("clickstream.warehouse", "kpis")
    for days in (None, [], ["2026-03-01", "2026-03-02"]):
        for by_day in (True, False):
            text, params = kpis.bind(kpi_params("USD", days, by_day=by_day, previous_days=days or ()))
            assert text.count("?") == len(params) and ":" not in text.replace("::", "")
