"""The dashboard page from a warehouse: tiles equal the SQL, self-contained, escaped."""

from __future__ import annotations

import html as html_module
import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.adapters.warehouse import open_warehouse
from clickstream.report import build_report
from clickstream.report.render import TILES, fmt_duration, raw
from clickstream.warehouse.kpis import kpi_totals, recompute_daily_kpis
from clickstream.warehouse.loader import RunRecord, load_run
from clickstream.warehouse.migrate import migrate
from clickstream_cli.main import main
from tests.unit.warehouse.factory import (
    DAY,
    STORE_DAY_KPIS,
    at,
    event,
    product_event,
    session,
    store_day,
    write_run,
)


@pytest.fixture
def loaded(tmp_path):
    """A DuckDB warehouse holding the aggregated store day."""
    wh = open_warehouse(f"duckdb://{tmp_path}/w.duckdb")
    events, sessions = store_day()
    with wh.connect() as conn:
        migrate(conn)
        stats = load_run(
            conn, write_run(tmp_path / "r", events, sessions), RunRecord("run-1", "exec-1", None, at(23))
        )
        recompute_daily_kpis(conn, stats.affected_days, "USD")
    return wh


def _tiles(html: str) -> dict[str, str]:
    return dict(re.findall(r'<div class="tile" id="kpi-[^"]+" data-kpi="([^"]+)" data-value="([^"]*)"', html))


def test_every_tile_shows_the_sql_value(loaded):
    # Given the aggregated store day
    with loaded.connect() as conn:
        html = build_report(conn, "USD")
        totals = kpi_totals(conn, "USD")
    # Then there is one tile per KPI and each carries exactly the SQL value
    tiles = _tiles(html)
    assert list(tiles) == [key for key, _, _ in TILES]
    assert tiles == {key: raw(totals[key]) for key, _, _ in TILES}
    # And those are the hand-computed numbers, shown formatted
    assert (tiles["gross_revenue"], tiles["refunds"], tiles["net_revenue"]) == (
        "1500.00",
        "100.00",
        "1400.00",
    )
    assert tiles["aov"] == "750.00" and tiles["orders"] == "2"
    assert float(tiles["engagement_rate"]) == pytest.approx(STORE_DAY_KPIS["engagement_rate"])
    assert ">USD 1,500.00<" in html and ">USD 100.00<" in html and ">USD 750.00<" in html
    assert ">60.0%<" in html and ">40.0%<" in html and ">3m 15s<" in html
    # And over all days there is no previous period to compare with
    assert "data-change" not in html and 'class="change' not in html


def test_charts_carry_the_view_numbers(loaded):
    with loaded.connect() as conn:
        html = build_report(conn, "USD")
    for chart in ("sessions-per-day", "revenue-per-day", "funnel", "top-products", "channels", "devices"):
        assert f'data-chart="{chart}"' in html
    funnel = re.search(r'data-chart="funnel".*?</svg>', html).group(0)
    assert re.findall(r'data-label="([^"]+)" data-value="(\d+)"', funnel) == [
        ("Viewed item", "3"),
        ("Added to cart", "3"),
        ("Began checkout", "2"),
        ("Purchased", "2"),
    ]
    day = re.search(r'data-chart="sessions-per-day".*?</svg>', html).group(0)
    assert 'data-label="2026-03-02" data-value="5"' in day
    assert 'id="retention-table"' in html and 'id="landing-table"' in html
    assert "(60.0% of sessions)" in funnel and "(66.7% of previous step)" in funnel


def test_page_is_self_contained(loaded):
    with loaded.connect() as conn:
        html = build_report(conn, "USD")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    assert "url(" not in html


def test_values_from_the_data_are_html_escaped(tmp_path):
    # Given a product name and landing page crafted to inject markup
    evil = {
        "product_id": "px",
        "name": '<img src=x onerror="alert(1)">',
        "category": "x&y",
        "price": 5.0,
        "quantity": 1,
    }
    events = [
        event("e1", "S", "V", "page_view", at(9), path="/<b>hi</b>"),
        product_event("e2", "S", "V", "view_item", at(9, 1), [evil]),
    ]
    sessions = [
        session("S", "V", at(9), 20, landing_page='/"><script>x</script>', viewed_item=True, engaged=True)
    ]
    wh = open_warehouse(f"duckdb://{tmp_path}/w.duckdb")
    with wh.connect() as conn:
        migrate(conn)
        load_run(conn, write_run(tmp_path / "r", events, sessions), RunRecord("run-1"))
        html = build_report(conn, "USD")
    # Then the markup shows as text, never as tags
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "&lt;script&gt;" in html


def test_empty_warehouse_renders_a_page_without_numbers(tmp_path):
    wh = open_warehouse(f"duckdb://{tmp_path}/w.duckdb")
    with wh.connect() as conn:
        migrate(conn)
        html = build_report(conn, "EUR")
    tiles = _tiles(html)
    assert tiles["sessions"] == "0" and tiles["conversion_rate"] == ""
    assert "No data yet" in html and "money in EUR" in html


def test_duration_format():
    assert [fmt_duration(v) for v in (None, 0, 9.6, 194.6, 3600)] == [
        "\u2013",
        "0s",
        "10s",
        "3m 15s",
        "60m 00s",
    ]


def test_cli_report_writes_the_page(loaded, tmp_path, capsys):
    # When `clickstream report` runs against the warehouse
    out = tmp_path / "site" / "dashboard.html"
    code = main(["report", "--warehouse", f"duckdb://{loaded.path}", "--out", str(out), "--currency", "usd"])
    # Then it exits 0 and writes the same tiles the SQL gives
    assert code == 0
    assert _tiles(out.read_text(encoding="utf-8"))["net_revenue"] == "1400.00"
    assert "report written to" in capsys.readouterr().out


def test_cli_report_recompute_rebuilds_daily_kpis(loaded, tmp_path):
    with loaded.connect() as conn:
        conn.execute("DELETE FROM daily_kpis")
    out = tmp_path / "r.html"
    assert main(["report", "--warehouse", f"duckdb://{loaded.path}", "--out", str(out), "--recompute"]) == 0
    with loaded.connect() as conn:
        assert conn.query("SELECT sessions, net_revenue FROM daily_kpis") == [(5, Decimal("1400.00"))]


def test_cli_report_bad_url_exits_non_zero_with_a_reason(tmp_path, capsys):
    code = main(["report", "--warehouse", "mysql://nope", "--out", str(tmp_path / "r.html")])
    assert code == 2
    assert "unsupported warehouse URL" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.fixture
def two_days(tmp_path):
    """The store day and the money fixture's second day (tests/integration/warehouse/test_revenue.py), DuckDB."""
    from tests.unit.warehouse.factory import second_day

    wh = open_warehouse(f"duckdb://{tmp_path}/w2.duckdb")
    events, sessions = store_day()
    more_events, more_sessions = second_day()
    with wh.connect() as conn:
        migrate(conn)
        stats = load_run(
            conn, write_run(tmp_path / "r", events + more_events, sessions + more_sessions), RunRecord("r1")
        )
        recompute_daily_kpis(conn, stats.affected_days, "USD")
    return wh


def _tile(html: str, key: str) -> str:
    return re.search(rf'<div class="tile" id="kpi-{key}".*?</div></div>', html).group(0)


def test_each_tile_shows_its_change_against_the_previous_period(two_days):
    # Given the last day (03-03) against the day before (03-02)
    with two_days.connect() as conn:
        html = build_report(conn, "USD", last_days=1)
    # Then each tile carries the previous value and the relative change computed in SQL, shown as an arrow and %
    sessions, gross, refunds, aov = (_tile(html, k) for k in ("sessions", "gross_revenue", "refunds", "aov"))
    assert 'data-value="6" data-change="0.2" data-previous="5"' in sessions and "\u25b2 20.0%" in sessions
    assert 'class="change good"' in sessions
    # gross 549.93 against 1,500.00: down 63.3%; refunds 375.50 against 100.00: up 275.5%, which is bad news
    assert 'data-previous="1500.00"' in gross and "\u25bc 63.3%" in gross and 'class="change bad"' in gross
    assert (
        'data-previous="100.00"' in refunds and "\u25b2 275.5%" in refunds and 'class="change bad"' in refunds
    )
    assert float(re.search(r'data-change="([^"]+)"', aov).group(1)) == pytest.approx(274.97 / 750 - 1)
    assert "compared with 2026-03-02 to 2026-03-02" in html


def test_a_tile_without_a_previous_value_shows_a_dash(two_days):
    # Given a period whose previous period has no session (02-24 .. 02-28 is empty)
    with two_days.connect() as conn:
        html = build_report(conn, "USD", last_days=5, until=DAY.date())
    sessions = _tile(html, "sessions")
    assert (
        'data-change="" data-previous="0"' in sessions
        and "no value or zero in the previous period" in sessions
    )


def test_tiles_explain_their_definitions(loaded):
    with loaded.connect() as conn:
        html = build_report(conn, "USD")
    titles = dict(re.findall(r'data-kpi="([^"]+)" data-value="[^"]*" title="([^"]+)"', html))
    assert set(titles) == {key for key, _, _ in TILES}
    assert "gross revenue / orders" in titles["aov"] and "Refunds do not lower it" in titles["aov"]
    assert "on the day of the refund" in titles["refunds"] and "in USD" in titles["refunds"]
    assert "Gross revenue - refunds" in titles["net_revenue"]
    assert "Distinct transaction ids" in titles["orders"]


def test_revenue_per_currency_appears_when_there_is_more_than_one(two_days, loaded):
    with two_days.connect() as conn:
        both = build_report(conn, "USD")
        last = build_report(conn, "USD", last_days=1)
    with loaded.connect() as conn:
        one = build_report(conn, "USD")
    # Then a page with USD and EUR money lists each currency apart (store currency first), one with USD only does not
    assert 'id="currency-table"' not in one
    rows = re.findall(r'<td data-col="currency" data-value="([A-Z]+)">.*?</tr>', both)
    assert rows == ["USD", "EUR"]
    eur = re.search(r'data-value="EUR">EUR</td>(.*?)</tr>', last).group(1)
    assert re.findall(r'data-value="([^"]*)"', eur) == ["1", "80.00", "30.00", "50.00", "80.00"]
    assert ">EUR 30.00<" in eur


def test_revenue_chart_has_gross_and_refunds_per_day(two_days):
    with two_days.connect() as conn:
        html = build_report(conn, "USD")
    chart = re.search(r'data-chart="revenue-per-day".*?</svg>', html).group(0)
    bars = re.findall(r'data-label="([^"]+)" data-series="([^"]+)" data-value="([^"]+)"', chart)
    assert bars == [
        ("2026-03-02", "Gross revenue", "1500.00"),
        ("2026-03-02", "Refunds", "100.00"),
        ("2026-03-03", "Gross revenue", "549.93"),
        ("2026-03-03", "Refunds", "375.50"),
    ]
    assert 'data-points="4"' in chart and chart.count('class="legend"') == 2


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(currency=st.text(min_size=1, max_size=12).filter(lambda c: c.strip() and c != "USD"))
def test_any_currency_text_in_the_warehouse_is_shown_as_text(currency, tmp_path_factory):
    """Validation admits only ISO-like codes, but a warehouse loaded some other way may hold anything: the currency
    table and the money formatter must escape it, and the amounts stay apart from the store currency's."""
    folder = tmp_path_factory.mktemp("currency")
    events = [
        event("u1", "S1", "V1", "purchase", at(9), transaction_id="T1", value=10.0, currency="USD"),
        event("x1", "S2", "V2", "purchase", at(10), transaction_id="T2", value=7.5, currency=currency),
    ]
    sessions = [
        session("S1", "V1", at(9), 60, engaged=True, purchased=True, orders=1, revenue=10.0, currency="USD"),
        session(
            "S2", "V2", at(10), 60, engaged=True, purchased=True, orders=1, revenue=7.5, currency=currency
        ),
    ]
    wh = open_warehouse(f"duckdb://{folder}/w.duckdb")
    with wh.connect() as conn:
        migrate(conn)
        stats = load_run(conn, write_run(folder / "r", events, sessions), RunRecord("r1"))
        recompute_daily_kpis(conn, stats.affected_days, "USD")
        html = build_report(conn, "USD")
    table = re.search(r'<table id="currency-table">.*?</table>', html, re.DOTALL).group(0)
    shown = html_module.escape(currency)
    # Then the hostile currency is one row of the table, as text (no tag, no attribute broken out of)
    rows = re.findall(r'<td data-col="currency" data-value="([^"]*)">([^<]*)</td>', table)
    assert rows == [("USD", "USD"), (shown, shown)]
    assert f">{shown} 7.50<" in table
    # And the store currency's tiles count the USD order alone
    assert ">USD 10.00<" in _tile(html, "gross_revenue") and 'data-value="1"' in _tile(html, "orders")
