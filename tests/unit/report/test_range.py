"""The dashboard over the last N days: tiles, charts and tables restricted to the range, on DuckDB and PostgreSQL;
over all days the breakdowns equal the analyst views."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest

from clickstream.adapters.warehouse import open_warehouse
from clickstream.report import build_report
from clickstream.report.data import DateRange, collect, resolve_range
from clickstream.warehouse.kpis import kpi_totals, recompute_daily_kpis
from clickstream.warehouse.loader import RunRecord, load_run
from clickstream.warehouse.migrate import migrate
from clickstream_cli.main import main
from tests.unit.warehouse.factory import DAY, STORE_DAY_KPIS, at, event, session, store_day, write_run

STORE_DAY = DAY.date()  # 2026-03-02


def _older_days() -> tuple[list[dict], list[dict]]:
    """Two earlier human sessions: an affiliate visit on 02-20 and a mobile visit on 02-28."""
    feb20, feb28 = DAY - timedelta(days=10), DAY - timedelta(days=2)
    events = [
        event("o1", "OLD1", "Z", "page_view", at(9, day=feb20), path="/old-sale"),
        event("o2", "OLD2", "Y", "page_view", at(15, day=feb28), path="/c/laptops"),
    ]
    sessions = [
        session(
            "OLD1", "Z", at(9, day=feb20), 40, channel="Affiliates", landing_page="/old-sale", engaged=True
        ),
        session("OLD2", "Y", at(15, day=feb28), 5, device_type="mobile", landing_page="/c/laptops"),
    ]
    return events, sessions


def _load(url: str, tmp_path) -> object:
    wh = open_warehouse(url)
    events, sessions = store_day()
    old_events, old_sessions = _older_days()
    with wh.connect() as conn:
        migrate(conn)
        stats = load_run(
            conn,
            write_run(tmp_path / "r", events + old_events, sessions + old_sessions),
            RunRecord("run-1", "exec-1", None, at(23)),
        )
        recompute_daily_kpis(conn, stats.affected_days, "USD")
    return wh


@pytest.fixture
def duck(tmp_path):
    return _load(f"duckdb://{tmp_path}/w.duckdb", tmp_path)


def test_range_is_anchored_on_the_latest_day_with_sessions(duck):
    with duck.connect() as conn:
        assert resolve_range(conn, None) is None
        assert resolve_range(conn, 3) == DateRange(date(2026, 2, 28), STORE_DAY)
        assert resolve_range(conn, 1, date(2026, 2, 20)) == DateRange(date(2026, 2, 20), date(2026, 2, 20))
        assert resolve_range(conn, None, date(2026, 2, 28)) == DateRange(date(2026, 2, 20), date(2026, 2, 28))
        with pytest.raises(ValueError):
            resolve_range(conn, 0)


def test_empty_warehouse_has_no_range(tmp_path):
    wh = open_warehouse(f"duckdb://{tmp_path}/e.duckdb")
    with wh.connect() as conn:
        migrate(conn)
        assert resolve_range(conn, 7) is None


def _check_last_three_days(conn) -> None:
    # When the report covers the last 3 days (02-28 .. 03-02)
    data = collect(conn, "USD", resolve_range(conn, 3))
    # Then the affiliate visit of 02-20 is left out everywhere, and the 02-28 visit is in
    assert data.totals["sessions"] == STORE_DAY_KPIS["sessions"] + 1
    assert data.totals == kpi_totals(conn, "USD", [date(2026, 2, 28), date(2026, 3, 1), STORE_DAY])
    assert [str(d["day"]) for d in data.daily] == ["2026-02-28", "2026-03-02"]
    assert "Affiliates" not in {c["channel"] for c in data.channels}
    assert "/old-sale" not in {p["landing_page"] for p in data.landing_pages}
    assert {d["device_type"]: d["sessions"] for d in data.devices}["mobile"] >= 1
    assert (data.first_day, data.last_day) == ("2026-02-28", "2026-03-02")
    # And the store day alone gives exactly the hand-computed KPIs
    one = collect(conn, "USD", resolve_range(conn, 1))
    assert one.totals["sessions"] == STORE_DAY_KPIS["sessions"]
    assert str(one.totals["gross_revenue"]) == "1500.00" and str(one.totals["net_revenue"]) == "1400.00"
    assert one.totals["orders"] == 2
    assert [p["product_id"] for p in one.products] == [p["product_id"] for p in collect(conn, "USD").products]


def test_last_days_restricts_every_part_of_the_page_duckdb(duck):
    with duck.connect() as conn:
        _check_last_three_days(conn)


@pytest.mark.postgres
def test_last_days_restricts_every_part_of_the_page_postgresql(pg_database, tmp_path):
    wh = _load(pg_database, tmp_path)
    with wh.connect() as conn:
        _check_last_three_days(conn)


def test_over_all_days_the_breakdowns_equal_the_analyst_views(duck):
    with duck.connect() as conn:
        data = collect(conn, "USD")
        totals = kpi_totals(conn, "USD")
        assert data.totals == totals

        def without_money(rows):
            return [{k: v for k, v in r.items() if k not in ("gross_revenue", "orders")} for r in rows]

        assert without_money(data.channels) == conn.query_dicts(
            "SELECT channel, sessions, visitors, engagement_rate, conversion_rate"
            " FROM channel_performance ORDER BY sessions DESC, channel"
        )
        assert without_money(data.devices) == conn.query_dicts(
            "SELECT device_type, sessions, visitors, engagement_rate, conversion_rate"
            " FROM device_breakdown ORDER BY sessions DESC, device_type"
        )
        assert without_money(data.landing_pages) == conn.query_dicts(
            "SELECT landing_page, entrances, bounce_rate, conversion_rate FROM landing_pages"
            " ORDER BY entrances DESC, landing_page LIMIT 10"
        )
        assert data.products == conn.query_dicts(
            "SELECT product_id, product_name, category, views, carts, purchases, units, revenue FROM top_products"
            " ORDER BY revenue DESC NULLS LAST, views DESC, product_id LIMIT 10"
        )
    # And the breakdowns' money is the tiles' (gross revenue and orders of the store currency), split up
    for rows in (data.channels, data.devices, data.landing_pages):
        assert sum(r["gross_revenue"] for r in rows) == totals["gross_revenue"] == Decimal("1500.00")
    assert sum(r["orders"] for r in data.channels) == totals["orders"] == 2
    assert {c["channel"]: str(c["gross_revenue"]) for c in data.channels} == {
        "Paid Search": "1200.00",
        "Email": "300.00",
        "Direct": "0.00",
        "Organic Search": "0.00",
        "Affiliates": "0.00",
    }


def test_page_names_its_range(duck):
    with duck.connect() as conn:
        html = build_report(conn, "USD", last_days=3)
    assert "Days 2026-02-28 to 2026-03-02 (last 3 days)" in html
    assert re.search(r'id="kpi-sessions" data-kpi="sessions" data-value="6"', html)


def test_cli_report_last_days(duck, tmp_path, capsys):
    out = tmp_path / "last.html"
    code = main(["report", "--warehouse", f"duckdb://{duck.path}", "--out", str(out), "--last-days", "1"])
    assert code == 0
    html = out.read_text(encoding="utf-8")
    assert 'data-kpi="sessions" data-value="5"' in html and "(last 1 day)" in html
    code = main(
        ["report", "--warehouse", f"duckdb://{duck.path}", "--out", str(out), "--until", "2026-02-20"]
    )
    assert code == 0 and 'data-kpi="sessions" data-value="1"' in out.read_text(encoding="utf-8")


def test_cli_report_rejects_a_non_positive_range(duck, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "report",
                "--warehouse",
                f"duckdb://{duck.path}",
                "--out",
                str(tmp_path / "x.html"),
                "--last-days",
                "0",
            ]
        )
    assert exc.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
