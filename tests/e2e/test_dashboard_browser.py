"""The dashboard opened in headless Chromium: every chart rendered, no errors, and the numbers a person sees are the
warehouse's SQL results.

The page comes from a small demo run (the real pipeline under moto into DuckDB). Without Chromium these tests skip
with the reason; under ``CI=true`` they fail instead, so a CI image without a browser cannot pass silently.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from clickstream.adapters.warehouse import Connection, open_warehouse
from clickstream.report.render import TILES, _formatters, raw
from clickstream.warehouse.kpis import kpi_totals
from clickstream_local.browser import PageProbe, find_chromium, inspect_page, screenshot

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
    binary = find_chromium()
    if binary is None:
        reason = (
            "chromium not found: install Debian's chromium (make test does when root) or set CHROMIUM_BIN"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; browser tests never skip under CI=true")
        pytest.skip(reason)
    return binary


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
    assert int(tiles["sessions"]["value"]) == human["sessions"] > 0
    assert int(tiles["visitors"]["value"]) == human["visitors"] > 0
    assert int(tiles["orders"]["value"]) > 0


def _bars(probe: PageProbe, chart: str) -> list[tuple[str, str]]:
    return [(bar["label"], bar["value"]) for bar in probe.chart(chart)["bars"]]


@pytest.mark.slow
def test_charts_show_the_sql_results(probe, sql):
    # Sessions and revenue per day = daily_kpis
    daily = sql("SELECT day, sessions, revenue FROM daily_kpis ORDER BY day")
    assert _bars(probe, "sessions-per-day") == [(raw(d["day"]), str(d["sessions"])) for d in daily]
    revenue = _bars(probe, "revenue-per-day")
    assert [label for label, _ in revenue] == [raw(d["day"]) for d in daily]
    assert all(_same(v, d["revenue"]) for (_, v), d in zip(revenue, daily, strict=True))
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
