"""The dashboard page from a warehouse: tiles equal the SQL, self-contained, escaped."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from clickstream.adapters.warehouse import open_warehouse
from clickstream.report import build_report
from clickstream.report.render import TILES, fmt_duration, raw
from clickstream.warehouse.kpis import kpi_totals, recompute_daily_kpis
from clickstream.warehouse.loader import RunRecord, load_run
from clickstream.warehouse.migrate import migrate
from clickstream_cli.main import main
from tests.unit.warehouse.factory import (
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
    assert tiles["revenue"] == "1400.00" and tiles["aov"] == "700.00" and tiles["orders"] == "2"
    assert float(tiles["engagement_rate"]) == pytest.approx(STORE_DAY_KPIS["engagement_rate"])
    assert ">USD 1,400.00<" in html and ">60.0%<" in html and ">40.0%<" in html and ">3m 15s<" in html


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
    assert "No data yet" in html and "revenue in EUR" in html


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
    assert _tiles(out.read_text(encoding="utf-8"))["revenue"] == "1400.00"
    assert "report written to" in capsys.readouterr().out


def test_cli_report_recompute_rebuilds_daily_kpis(loaded, tmp_path):
    with loaded.connect() as conn:
        conn.execute("DELETE FROM daily_kpis")
    out = tmp_path / "r.html"
    assert main(["report", "--warehouse", f"duckdb://{loaded.path}", "--out", str(out), "--recompute"]) == 0
    with loaded.connect() as conn:
        assert conn.query("SELECT sessions, revenue FROM daily_kpis") == [(5, Decimal("1400.00"))]


def test_cli_report_bad_url_exits_non_zero_with_a_reason(tmp_path, capsys):
    code = main(["report", "--warehouse", "mysql://nope", "--out", str(tmp_path / "r.html")])
    assert code == 2
    assert "unsupported warehouse URL" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
