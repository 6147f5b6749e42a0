"""What the report shows, read with SQL from the warehouse (``daily_kpis``, the analyst views, the KPI query)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clickstream.warehouse.engine import Connection
from clickstream.warehouse.kpis import kpi_totals

FUNNEL_STEPS = (
    ("viewed_item", "Viewed item"),
    ("added_to_cart", "Added to cart"),
    ("began_checkout", "Began checkout"),
    ("purchased", "Purchased"),
)
TOP_N = 10
RETENTION_COHORTS = 8
RETENTION_WEEKS = 8


@dataclass
class ReportData:
    currency: str
    totals: dict[str, Any]
    first_day: str | None = None
    last_day: str | None = None
    daily: list[dict[str, Any]] = field(default_factory=list)
    funnel: list[tuple[str, str, int]] = field(default_factory=list)  # (key, label, sessions)
    products: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    landing_pages: list[dict[str, Any]] = field(default_factory=list)
    retention: list[dict[str, Any]] = field(default_factory=list)
    last_run: dict[str, Any] | None = None


def collect(conn: Connection, currency: str) -> ReportData:
    """Everything the page needs, over the whole warehouse."""
    daily = conn.query_dicts(
        "SELECT day, sessions, visitors, orders, revenue, conversion_rate, engagement_rate FROM daily_kpis ORDER BY day"
    )
    funnel_row = conn.query_dicts(
        "SELECT COALESCE(sum(viewed_item), 0) AS viewed_item, COALESCE(sum(added_to_cart), 0) AS added_to_cart,"
        " COALESCE(sum(began_checkout), 0) AS began_checkout, COALESCE(sum(purchased), 0) AS purchased"
        " FROM funnel_daily"
    )[0]
    runs = conn.query_dicts(
        "SELECT run_id, execution_id, watermark_to, events_loaded, sessions_loaded, loaded_at"
        " FROM pipeline_runs ORDER BY watermark_to DESC NULLS LAST, loaded_at DESC LIMIT 1"
    )
    return ReportData(
        currency=currency,
        totals=kpi_totals(conn, currency),
        first_day=daily[0]["day"].isoformat() if daily else None,
        last_day=daily[-1]["day"].isoformat() if daily else None,
        daily=daily,
        funnel=[(key, label, int(funnel_row[key])) for key, label in FUNNEL_STEPS],
        products=conn.query_dicts(
            "SELECT product_id, product_name, category, views, carts, purchases, units, revenue FROM top_products"
            f" ORDER BY revenue DESC NULLS LAST, views DESC, product_id LIMIT {TOP_N}"
        ),
        channels=conn.query_dicts(
            "SELECT channel, sessions, visitors, engagement_rate, conversion_rate, orders, revenue"
            " FROM channel_performance ORDER BY sessions DESC, channel"
        ),
        devices=conn.query_dicts(
            "SELECT device_type, sessions, visitors, engagement_rate, conversion_rate, revenue"
            " FROM device_breakdown ORDER BY sessions DESC, device_type"
        ),
        landing_pages=conn.query_dicts(
            "SELECT landing_page, entrances, bounce_rate, conversion_rate, revenue FROM landing_pages"
            f" ORDER BY entrances DESC, landing_page LIMIT {TOP_N}"
        ),
        retention=conn.query_dicts(
            "SELECT cohort_week, week_offset, cohort_size, visitors, retention_rate FROM retention_weekly"
            " WHERE cohort_week IN (SELECT cohort_week FROM (SELECT DISTINCT cohort_week FROM retention_weekly) c"
            f" ORDER BY cohort_week DESC LIMIT {RETENTION_COHORTS}) AND week_offset < {RETENTION_WEEKS}"
            " ORDER BY cohort_week, week_offset"
        ),
        last_run=runs[0] if runs else None,
    )
