"""What the report shows, read with SQL from the warehouse (``daily_kpis``, the analyst views, the KPI query)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from clickstream.adapters.warehouse import Connection
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


@dataclass(frozen=True)
class DateRange:
    """Reporting days ``first`` .. ``last`` (inclusive), days in the site's time zone."""

    first: date
    last: date

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


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
    period: DateRange | None = None  # the range asked for (None: every day in the warehouse)


def resolve_range(conn: Connection, last_days: int | None, until: date | None = None) -> DateRange | None:
    """The last ``last_days`` days up to ``until`` (default: the latest day with sessions); None = all days.

    Anchoring on the latest day with data (not today) keeps "last 7 days" meaningful for a warehouse that is
    loaded in batches or replayed: the page always names the days it covers.
    """
    if last_days is None and until is None:
        return None
    if last_days is not None and last_days < 1:
        raise ValueError("last_days must be at least 1")
    bounds = conn.query("SELECT min(session_date), max(session_date) FROM sessions")[0]
    end = until or bounds[1]
    if end is None:  # an empty warehouse: nothing to anchor on
        return None
    if last_days is not None:
        return DateRange(end - timedelta(days=last_days - 1), end)
    return DateRange(min(bounds[0] or end, end), end)


def _breakdown(key_sql: str, key: str, measures: str, where: str) -> str:
    """An analyst view's SELECT (channel_performance, device_breakdown, landing_pages) over ``where`` days."""
    return f"SELECT {key_sql} AS {key}, {measures} FROM human_sessions {where} GROUP BY {key_sql}"


_SHARE = "CAST(count(*) FILTER (WHERE {flag}) AS DOUBLE PRECISION) / count(*)"


def collect(conn: Connection, currency: str, period: DateRange | None = None) -> ReportData:
    """Everything the page needs, over ``period`` (default: the whole warehouse).

    Same definitions as the analyst views (``channel_performance``, ``device_breakdown``, ``landing_pages``,
    ``top_products`` = ``product_daily`` summed, ``funnel_daily``, ``retention_weekly``), restricted to the days.
    """
    if period is None:
        day_where, day_params, session_where = "", [], ""
        cohort_where: tuple[str, list[Any]] = ("", [])
        days: list[date] | None = None
    else:
        day_where, day_params = " WHERE day BETWEEN ? AND ?", [period.first, period.last]
        session_where = "WHERE session_date BETWEEN ? AND ?"
        week_start = period.first - timedelta(days=period.first.weekday())  # cohorts are Monday weeks
        cohort_where = (" AND cohort_week BETWEEN ? AND ?", [week_start, period.last])
        days = period.days
    session_params = day_params

    daily = conn.query_dicts(
        "SELECT day, sessions, visitors, orders, revenue, conversion_rate, engagement_rate FROM daily_kpis"
        f"{day_where} ORDER BY day",
        day_params,
    )
    funnel_row = conn.query_dicts(
        "SELECT COALESCE(sum(viewed_item), 0) AS viewed_item, COALESCE(sum(added_to_cart), 0) AS added_to_cart,"
        " COALESCE(sum(began_checkout), 0) AS began_checkout, COALESCE(sum(purchased), 0) AS purchased"
        f" FROM funnel_daily{day_where}",
        day_params,
    )[0]
    runs = conn.query_dicts(
        "SELECT run_id, execution_id, watermark_to, events_loaded, sessions_loaded, loaded_at"
        " FROM pipeline_runs ORDER BY watermark_to DESC NULLS LAST, loaded_at DESC LIMIT 1"
    )
    engaged, purchased = _SHARE.format(flag="engaged"), _SHARE.format(flag="purchased")
    channels = _breakdown(
        "COALESCE(channel, 'Unassigned')",
        "channel",
        f"count(*) AS sessions, count(DISTINCT anonymous_id) AS visitors, {engaged} AS engagement_rate,"
        f" {purchased} AS conversion_rate, COALESCE(sum(orders), 0) AS orders, COALESCE(sum(revenue), 0) AS revenue",
        session_where,
    )
    devices = _breakdown(
        "COALESCE(device_type, 'unknown')",
        "device_type",
        f"count(*) AS sessions, count(DISTINCT anonymous_id) AS visitors, {engaged} AS engagement_rate,"
        f" {purchased} AS conversion_rate, COALESCE(sum(revenue), 0) AS revenue",
        session_where,
    )
    landing = _breakdown(
        "COALESCE(landing_page, '(not set)')",
        "landing_page",
        f"count(*) AS entrances, {_SHARE.format(flag='NOT engaged')} AS bounce_rate,"
        f" {purchased} AS conversion_rate, COALESCE(sum(revenue), 0) AS revenue",
        session_where,
    )
    return ReportData(
        currency=currency,
        totals=kpi_totals(conn, currency, days),
        first_day=(period.first.isoformat() if period else daily[0]["day"].isoformat() if daily else None),
        last_day=(period.last.isoformat() if period else daily[-1]["day"].isoformat() if daily else None),
        daily=daily,
        funnel=[(key, label, int(funnel_row[key])) for key, label in FUNNEL_STEPS],
        products=conn.query_dicts(
            "SELECT product_id, max(product_name) AS product_name, max(category) AS category, sum(views) AS views,"
            " sum(carts) AS carts, sum(purchases) AS purchases, sum(units) AS units, sum(revenue) AS revenue"
            f" FROM product_daily{day_where} GROUP BY product_id"
            f" ORDER BY revenue DESC NULLS LAST, views DESC, product_id LIMIT {TOP_N}",
            day_params,
        ),
        channels=conn.query_dicts(f"{channels} ORDER BY sessions DESC, channel", session_params),
        devices=conn.query_dicts(f"{devices} ORDER BY sessions DESC, device_type", session_params),
        landing_pages=conn.query_dicts(
            f"{landing} ORDER BY entrances DESC, landing_page LIMIT {TOP_N}", session_params
        ),
        retention=conn.query_dicts(
            "SELECT cohort_week, week_offset, cohort_size, visitors, retention_rate FROM retention_weekly"
            " WHERE cohort_week IN (SELECT cohort_week FROM (SELECT DISTINCT cohort_week FROM retention_weekly"
            f" WHERE TRUE{cohort_where[0]}) c ORDER BY cohort_week DESC LIMIT {RETENTION_COHORTS})"
            f" AND week_offset < {RETENTION_WEEKS} ORDER BY cohort_week, week_offset",
            cohort_where[1],
        ),
        last_run=runs[0] if runs else None,
        period=period,
    )
