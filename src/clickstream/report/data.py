"""What the report shows, read with SQL from the warehouse (``daily_kpis``, ``daily_revenue``, the analyst views, the
KPI query and its comparison with the previous period)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from clickstream.adapters.warehouse import Connection
from clickstream.core import sql
from clickstream.warehouse.kpis import kpi_params, kpi_totals, kpis_query

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

    def previous(self) -> DateRange:
        """The period of the same length that ends the day before this one starts."""
        length = timedelta(days=len(self.days))
        return DateRange(self.first - length, self.last - length)


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
    previous: DateRange | None = None  # the period compared with (None: no range, nothing to compare)
    # per KPI: "<kpi>_previous" (its value over the previous period) and "<kpi>_change" (relative change)
    changes: dict[str, Any] = field(default_factory=dict)
    currencies: list[dict[str, Any]] = field(
        default_factory=list
    )  # money per currency (store currency first)


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


def collect(conn: Connection, currency: str, period: DateRange | None = None) -> ReportData:
    """Everything the page needs, over ``period`` (default: the whole warehouse).

    Same definitions as the analyst views (``channel_performance``, ``device_breakdown``, ``landing_pages``,
    ``top_products`` = ``product_daily`` summed, ``funnel_daily``, ``retention_weekly``), restricted to the days; the
    queries are the files in ``report/sql/``. With a period, each KPI is compared with the previous period of the
    same length (``kpi_change.sql``).
    """
    days = period.days if period is not None else None
    params: dict[str, Any] = {
        "all_days": period is None,
        "first": period.first if period else None,
        "last": period.last if period else None,
        "currency": currency,
    }
    week_start = period.first - timedelta(days=period.first.weekday()) if period else None  # Monday weeks

    def rows(name: str, **extra: Any) -> list[dict[str, Any]]:
        query = sql.load("clickstream.report", name)
        wanted = {k: v for k, v in {**params, **extra}.items() if k in query.parameters}
        return conn.query_dicts(*query.bind(wanted))

    daily = rows("daily")
    funnel_row = rows("funnel")[0]
    runs = rows("last_run")
    previous = period.previous() if period is not None else None
    return ReportData(
        currency=currency,
        totals=kpi_totals(conn, currency, days),
        first_day=(period.first.isoformat() if period else daily[0]["day"].isoformat() if daily else None),
        last_day=(period.last.isoformat() if period else daily[-1]["day"].isoformat() if daily else None),
        daily=daily,
        funnel=[(key, label, int(funnel_row[key])) for key, label in FUNNEL_STEPS],
        products=rows("top_products", top=TOP_N),
        channels=rows("channels"),
        devices=rows("devices"),
        landing_pages=rows("landing_pages", top=TOP_N),
        retention=rows("retention", first_week=week_start, cohorts=RETENTION_COHORTS, weeks=RETENTION_WEEKS),
        last_run=runs[0] if runs else None,
        period=period,
        previous=previous,
        changes=kpi_changes(conn, currency, period) if period is not None else {},
        currencies=[
            {**kpi_totals(conn, row["currency"], days), "currency": row["currency"]}
            for row in rows("currencies")
        ],
    )


def kpi_changes(conn: Connection, currency: str, period: DateRange) -> dict[str, Any]:
    """Each KPI's value over the previous period of the same length and its relative change (computed in SQL:
    ``kpi_change.sql`` over the two periods of the KPI query)."""
    kpis, change = kpis_query(), sql.load("clickstream.report", "kpi_change")
    query = sql.Query(name=change.name, text=f"WITH kpi_periods AS ({kpis.text}) {change.text}")
    params = kpi_params(currency, period.days, by_day=False, previous_days=period.previous().days)
    return conn.query_dicts(*query.bind(params))[0]
