"""The dashboard opened in headless Chromium: every chart rendered, no errors, and the numbers a person sees are the
warehouse's SQL results.

The page comes from a small demo run (the real pipeline under moto into DuckDB). Without Chromium these tests skip
with the reason; under ``CI=true`` they fail instead, so a CI image without a browser cannot pass silently.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from clickstream.adapters.warehouse import Connection, open_warehouse
from clickstream.report.render import DEFINITIONS, TILES, _formatters, raw
from clickstream.warehouse.kpis import kpi_totals
from clickstream_local.browser import PageProbe, inspect_page, screenshot
from tests.e2e.browser_needs import chromium_binary

pytestmark = pytest.mark.browser

CHARTS = (
    "sessions-per-day",
    "revenue-per-day",
    "funnel",
    "top-products",
    "channels",
    "devices",
    "landing-pages",
)


@pytest.fixture(scope="session")
def chromium() -> str:
    return chromium_binary()


@pytest.fixture(scope="session")
def demo_report(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo run: two simulated days through the whole pipeline; returns its output folder."""
    from clickstream_local.runner import DemoOptions, run_demo

    out = tmp_path_factory.mktemp("dashboard") / "out"
    result = run_demo(
        DemoOptions(events=1500, days=2, seed=2, out=out, step_hours=12, buckets=2, progress=False)
    )
    assert result.ok, result.summary
    return out


@pytest.fixture(scope="session")
def probe(chromium: str, demo_report: Path) -> PageProbe:
    return inspect_page(demo_report / "report.html", chromium=chromium)


@pytest.fixture(scope="session")
def conn(demo_report: Path) -> Iterator[Connection]:
    """A connection to the demo's warehouse."""
    with open_warehouse(f"duckdb://{demo_report / 'warehouse.duckdb'}").connect() as connection:
        yield connection


@pytest.fixture(scope="session")
def sql(conn: Connection) -> Any:
    """Run a query on the demo's warehouse: ``sql(text) -> list[dict]``."""
    return conn.query_dicts


def _same(shown: str, expected: Any) -> bool:
    """A ``data-value`` string against the SQL value it must carry."""
    if expected is None:
        return shown == ""
    if isinstance(expected, float):
        return float(shown) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    if isinstance(expected, Decimal):
        return Decimal(shown) == expected
    return shown == raw(expected)


@pytest.mark.slow
def test_every_chart_rendered_with_visible_bars(probe):
    # Given the demo's dashboard loaded in Chromium
    charts = {c["chart"]: c for c in probe.charts}
    # Then every chart is there, has points, and its drawing has area on the page
    assert set(CHARTS) <= set(charts)
    for name in CHARTS:
        chart = charts[name]
        assert chart["points"] > 0, name
        assert chart["content"][0] > 100 and chart["content"][1] > 20, (name, chart["content"])
        assert chart["size"][0] > 200 and chart["size"][1] > 20, (name, chart["size"])
        # And every bar it announces was drawn with a positive size
        assert len(chart["bars"]) == chart["points"], name
        assert all(bar["width"] > 0 and bar["height"] > 0 for bar in chart["bars"]), name


@pytest.mark.slow
def test_page_loads_without_console_errors(probe):
    assert probe.errors == []
    assert probe.console == []
    assert probe.height > 1000


@pytest.mark.slow
def test_tiles_show_the_warehouse_kpis(probe, sql, conn):
    # Given the KPIs computed by SQL, and two of them counted independently from the sessions table
    from clickstream.core.config import get_settings

    currency = get_settings().store_currency
    totals = kpi_totals(conn, currency)
    human = sql(
        "SELECT count(*) AS sessions, count(DISTINCT anonymous_id) AS visitors FROM sessions"
        " WHERE NOT is_bot AND NOT is_internal"
    )[0]
    tiles = {t["kpi"]: t for t in probe.tiles}
    formatters = _formatters(currency)
    # Then one visible tile per KPI, carrying the SQL value and showing it formatted
    assert list(tiles) == [key for key, _, _ in TILES]
    for key, _label, kind in TILES:
        assert _same(tiles[key]["value"], totals[key]), key
        assert tiles[key]["text"] == formatters[kind](totals[key]), key
        assert tiles[key]["size"][0] > 0 and tiles[key]["size"][1] > 0
        assert tiles[key]["fits"], (key, tiles[key]["text"])
        # And its tooltip says how it is defined
        assert tiles[key]["title"].startswith(DEFINITIONS[key].format(currency=currency)), key
    assert int(tiles["sessions"]["value"]) == human["sessions"] > 0
    assert int(tiles["visitors"]["value"]) == human["visitors"] > 0
    assert int(tiles["orders"]["value"]) > 0
    # And refunds have a tile of their own; net revenue is gross minus refunds
    assert Decimal(tiles["net_revenue"]["value"]) == Decimal(tiles["gross_revenue"]["value"]) - Decimal(
        tiles["refunds"]["value"]
    )
    # And over every day there is no previous period: no tile shows a change
    assert all(tile["change"] is None and tile["changeText"] is None for tile in tiles.values())


def _bars(probe: PageProbe, chart: str) -> list[tuple[str, str]]:
    return [(bar["label"], bar["value"]) for bar in probe.chart(chart)["bars"]]


@pytest.mark.slow
def test_charts_show_the_sql_results(probe, sql):
    # Sessions per day, and gross revenue and refunds per day (two series) = daily_kpis
    daily = sql("SELECT day, sessions, gross_revenue, refunds FROM daily_kpis ORDER BY day")
    assert _bars(probe, "sessions-per-day") == [(raw(d["day"]), str(d["sessions"])) for d in daily]
    revenue = [(b["label"], b["series"], b["value"]) for b in probe.chart("revenue-per-day")["bars"]]
    expected = [
        (raw(d["day"]), series, d[column])
        for d in daily
        for series, column in (("Gross revenue", "gross_revenue"), ("Refunds", "refunds"))
    ]
    assert [(day, series) for day, series, _ in revenue] == [(day, series) for day, series, _ in expected]
    assert all(_same(v, e) for (_, _, v), (_, _, e) in zip(revenue, expected, strict=True))
    # Funnel = funnel_daily summed over the days
    funnel = sql(
        "SELECT sum(viewed_item) AS a, sum(added_to_cart) AS b, sum(began_checkout) AS c, sum(purchased) AS d"
        " FROM funnel_daily"
    )[0]
    assert [int(v) for _, v in _bars(probe, "funnel")] == [funnel["a"], funnel["b"], funnel["c"], funnel["d"]]
    # Channels and devices = their views, by sessions
    channels = sql("SELECT channel, sessions FROM channel_performance ORDER BY sessions DESC, channel")
    assert _bars(probe, "channels") == [(c["channel"], str(c["sessions"])) for c in channels]
    devices = sql("SELECT device_type, sessions FROM device_breakdown ORDER BY sessions DESC, device_type")
    assert _bars(probe, "devices") == [(d["device_type"], str(d["sessions"])) for d in devices]
    # Top products = top_products by revenue
    products = sql(
        "SELECT product_id, product_name, revenue FROM top_products"
        " ORDER BY revenue DESC NULLS LAST, views DESC, product_id LIMIT 10"
    )
    shown = _bars(probe, "top-products")
    assert [label for label, _ in shown] == [p["product_name"] or p["product_id"] for p in products]
    assert all(_same(v, p["revenue"]) for (_, v), p in zip(shown, products, strict=True))
    # Landing pages = landing_pages by entrances
    landing = sql(
        "SELECT landing_page, entrances, bounce_rate FROM landing_pages ORDER BY entrances DESC, landing_page LIMIT 10"
    )
    assert _bars(probe, "landing-pages") == [(p["landing_page"], str(p["entrances"])) for p in landing]
    cells = probe.table("landing-table")
    bounce = [c["value"] for c in cells if c["col"] == "bounce_rate"]
    assert len(bounce) == len(landing)
    assert all(_same(v, p["bounce_rate"]) for v, p in zip(bounce, landing, strict=True))


@pytest.mark.slow
def test_retention_grid_shows_the_cohort_view(probe, sql):
    rows = sql("SELECT cohort_week, week_offset, retention_rate FROM retention_weekly ORDER BY 1, 2")
    cells = probe.table("retention-table")
    assert rows and len(cells) == len(rows)
    for cell, row in zip(cells, rows, strict=True):
        assert cell["cohort"] == raw(row["cohort_week"]) and cell["col"] == f"W{row['week_offset']}"
        assert _same(cell["value"], row["retention_rate"])
        assert cell["text"].endswith("%")


@pytest.mark.slow
def test_full_page_screenshot(chromium, demo_report, probe, tmp_path):
    # When the page is captured
    png = screenshot(demo_report / "report.html", tmp_path / "dashboard.png", chromium=chromium)
    # Then it is a PNG as wide as the window and as tall as the whole page
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (1280, probe.height)


@pytest.fixture(scope="session")
def last_day(
    chromium: str, demo_report: Path, conn: Connection, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """The demo's dashboard over its last day only (compared with the day before), loaded in Chromium; returns
    (probe, the day, the day before)."""
    from clickstream.core.config import get_settings
    from clickstream.report import build_report

    page = tmp_path_factory.mktemp("last-day") / "report.html"
    page.write_text(build_report(conn, get_settings().store_currency, last_days=1), encoding="utf-8")
    (day,) = conn.query("SELECT max(session_date) FROM sessions")[0]
    return inspect_page(page, chromium=chromium), day, day - timedelta(days=1)


@pytest.mark.slow
def test_tiles_compare_the_period_with_the_previous_one(last_day, conn):
    # Given the last day's page, and both days' KPIs computed by SQL apart
    from clickstream.core.config import get_settings

    probe, day, before = last_day
    currency = get_settings().store_currency
    now, then = kpi_totals(conn, currency, [day]), kpi_totals(conn, currency, [before])
    tiles = {t["kpi"]: t for t in probe.tiles}
    assert probe.errors == [] and now["sessions"] > 0 and then["sessions"] > 0
    # Then every tile shows the day's value, and its change against the day before: ▲/▼ and the percentage
    for key, _label, _kind in TILES:
        tile = tiles[key]
        assert _same(tile["value"], now[key]), key
        assert _same(tile["previous"], then[key]), key
        if then[key] in (None, 0) or now[key] is None:
            assert tile["change"] == "" and tile["changeText"].startswith("\u2013"), key
            continue
        change = (float(now[key]) - float(then[key])) / abs(float(then[key]))
        assert float(tile["change"]) == pytest.approx(change, rel=1e-9, abs=1e-12), key
        arrow = "\u25b2" if change > 0 else "\u25bc" if change < 0 else "="
        assert tile["changeText"].startswith(f"{arrow} {abs(change) * 100:.1f}%"), (key, tile["changeText"])
        assert tile["changeSize"][0] > 0 and tile["changeSize"][1] > 0, key
        assert f"Previous period ({before.isoformat()} to {before.isoformat()})" in tile["title"], key


@pytest.mark.slow
def test_breakdowns_cover_the_chosen_days_only(last_day, sql):
    probe, day, _before = last_day
    # Channels, devices and landing pages count the last day's sessions, not every day's
    channels = sql(
        "SELECT COALESCE(channel, 'Unassigned') AS channel, count(*) AS sessions FROM human_sessions"
        f" WHERE session_date = DATE '{day.isoformat()}' GROUP BY 1 ORDER BY sessions DESC, channel"
    )
    assert _bars(probe, "channels") == [(c["channel"], str(c["sessions"])) for c in channels]
    devices = sql(
        "SELECT COALESCE(device_type, 'unknown') AS device_type, count(*) AS sessions FROM human_sessions"
        f" WHERE session_date = DATE '{day.isoformat()}' GROUP BY 1 ORDER BY sessions DESC, device_type"
    )
    assert _bars(probe, "devices") == [(d["device_type"], str(d["sessions"])) for d in devices]
    all_days = sql("SELECT sum(sessions) AS n FROM channel_performance")[0]["n"]
    assert sum(int(v) for _, v in _bars(probe, "channels")) < all_days
    # And the channels' gross revenue adds up to the Gross revenue tile
    tiles = {t["kpi"]: t for t in probe.tiles}
    revenue = [Decimal(c["value"]) for c in probe.table("channels-table") if c["col"] == "gross_revenue"]
    assert sum(revenue) == Decimal(tiles["gross_revenue"]["value"])


@pytest.fixture(scope="session")
def two_currencies(
    chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PageProbe, list[dict[str, Any]], Path]:
    """The money fixture (tests/integration/warehouse/test_revenue.py: USD and EUR, refunds of an earlier day's
    order, a partial refund, a refund of an order the warehouse never saw) as a dashboard of its last day."""
    from clickstream.report import build_report
    from clickstream.warehouse.kpis import recompute_daily_kpis
    from clickstream.warehouse.loader import RunRecord, load_run
    from clickstream.warehouse.migrate import migrate
    from tests.unit.warehouse.factory import second_day, store_day, write_run

    folder = tmp_path_factory.mktemp("money")
    events, sessions = store_day()
    more_events, more_sessions = second_day()
    warehouse = open_warehouse(f"duckdb://{folder / 'w.duckdb'}")
    with warehouse.connect() as connection:
        migrate(connection)
        run = write_run(folder / "run", events + more_events, sessions + more_sessions)
        recompute_daily_kpis(connection, load_run(connection, run, RunRecord("r1")).affected_days, "USD")
        (folder / "report.html").write_text(build_report(connection, "USD", last_days=1), encoding="utf-8")
        rows = connection.query_dicts(
            "SELECT currency, orders, gross_revenue, refunds, net_revenue, aov FROM daily_revenue"
            " WHERE day = DATE '2026-03-03' ORDER BY CASE WHEN currency = 'USD' THEN 0 ELSE 1 END, currency"
        )
    return inspect_page(folder / "report.html", chromium=chromium), rows, folder


@pytest.mark.slow
def test_money_tiles_and_revenue_per_currency(two_currencies):
    probe, rows, _ = two_currencies
    tiles = {t["kpi"]: t for t in probe.tiles}
    # Then the tiles show the hand-computed USD money of 2026-03-03 against 2026-03-02
    shown = {k: tiles[k]["text"] for k in ("orders", "gross_revenue", "refunds", "net_revenue", "aov")}
    assert shown == {
        "orders": "2",
        "gross_revenue": "USD 549.93",
        "refunds": "USD 375.50",
        "net_revenue": "USD 174.43",
        "aov": "USD 274.97",
    }
    assert tiles["refunds"]["changeText"].startswith("\u25b2 275.5%")  # 375.50 against 100.00
    assert tiles["aov"]["changeText"].startswith("\u25bc 63.3%")  # 274.97 against 750.00
    # And each currency has its own row, never added up, equal to daily_revenue
    cells = probe.table("currency-table")
    assert [c["value"] for c in cells if c["col"] == "currency"] == ["USD", "EUR"]
    for column in ("orders", "gross_revenue", "refunds", "net_revenue", "aov"):
        values = [c["value"] for c in cells if c["col"] == column]
        assert all(_same(v, r[column]) for v, r in zip(values, rows, strict=True)), column
    assert [c["text"] for c in cells if c["col"] == "refunds"] == ["USD 375.50", "EUR 30.00"]


@pytest.mark.slow
def test_a_nine_figure_money_value_fits_its_tile(chromium, two_currencies, tmp_path):
    # Given the money fixture's dashboard with a gross revenue of nine figures
    page = tmp_path / "long.html"
    html = (two_currencies[2] / "report.html").read_text(encoding="utf-8")
    tile = '<div class="value">USD 549.93</div>'
    assert html.count(tile) == 1
    page.write_text(html.replace(tile, '<div class="value">USD 999,999,999.99</div>'), encoding="utf-8")
    # Then, at the screenshot's width, every tile's value fits on its line inside the tile
    tiles = {t["kpi"]: t for t in inspect_page(page, chromium=chromium).tiles}
    assert tiles["gross_revenue"]["text"] == "USD 999,999,999.99"
    assert all(tile["fits"] for tile in tiles.values()), [t["kpi"] for t in tiles.values() if not t["fits"]]


# -- the harness itself can see failures (so the assertions above can fail) -------------------------------------
def test_probe_reports_script_errors_and_missing_resources(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head></head><body><img src="missing.png">'
        '<script>console.error("boom"); undefinedFunction();</script></body></html>',
        encoding="utf-8",
    )
    found = inspect_page(page, chromium=chromium)
    assert "boom" in found.errors
    assert any("undefinedFunction" in e for e in found.errors)
    assert any(e.startswith("resource failed:") and "missing.png" in e for e in found.errors)
    assert any("boom" in line for line in found.console)


def test_probe_sees_an_empty_chart(chromium, tmp_path):
    page = tmp_path / "empty.html"
    page.write_text(
        '<!DOCTYPE html><html><head></head><body><svg class="chart" data-chart="x" data-points="1" width="300"'
        ' height="100"><rect class="bar" x="0" y="0" width="0" height="0" data-label="a" data-value="1"/></svg>'
        "</body></html>",
        encoding="utf-8",
    )
    chart = inspect_page(page, chromium=chromium).chart("x")
    assert chart["content"] == [0, 0]
    assert chart["bars"] == [{"label": "a", "value": "1", "width": 0, "height": 0}]
