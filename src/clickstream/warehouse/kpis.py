"""Daily KPIs as SQL (``sql/revenue.sql``, ``sql/kpis.sql``) shared by ``daily_kpis``, ``daily_revenue`` and the
report's tiles.

Sessions = human sessions (bots and internal traffic excluded) of the day of their start in the site's time zone
(``sessions.session_date``). Visitors = distinct anonymous_id; signed-in users = distinct user_id; engagement rate =
engaged / sessions; bounce rate = 1 - engagement rate; conversion rate = sessions with a purchase / sessions.

Money (GA4's and the dbt e-commerce models' definitions), per currency and never summed across currencies, from
the purchase and refund events of human sessions, on the day of the session they happened in: orders = distinct
transaction ids of purchases; gross revenue = the orders' values (purchases on their day); refunds = refund amounts
on the refund's day (a partial refund counts what it says; a refund of an order placed earlier, or of one the
warehouse never saw, counts on its own day); net revenue = gross revenue - refunds; AOV = gross revenue / orders
(null without orders). ``daily_revenue`` holds every currency; ``daily_kpis`` the store currency's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from clickstream.adapters.warehouse import Connection
from clickstream.core import sql
from clickstream.core.observability import tracer

KPI_COLUMNS = (
    "sessions",
    "visitors",
    "signed_in_users",
    "engaged_sessions",
    "converted_sessions",
    "engagement_rate",
    "bounce_rate",
    "avg_session_duration_s",
    "pages_per_session",
    "conversion_rate",
    "orders",
    "gross_revenue",
    "refunds",
    "net_revenue",
    "aov",
    "currency",
)
REVENUE_COLUMNS = ("day", "currency", "orders", "gross_revenue", "refunds", "net_revenue", "aov")
CURRENT, PREVIOUS = 0, 1  # the periods of kpis.sql
_PACKAGE = "clickstream.warehouse"


def _as_date(day: str | date) -> date:
    return day if isinstance(day, date) else date.fromisoformat(day)


def _day_list(days: Sequence[str | date] | None) -> list[date]:
    return sorted({_as_date(d) for d in days or ()})


def kpi_params(
    currency: str,
    days: Sequence[str | date] | None,
    *,
    by_day: bool,
    previous_days: Sequence[str | date] = (),
) -> dict[str, Any]:
    """The parameters of ``kpis.sql``: every day (``days`` None) or those days, per day or in total; the totals of
    ``previous_days`` come out too (period 1) when not per day."""
    return {
        "currency": currency,
        "all_days": days is None,
        "days": _day_list(days),
        "previous_days": _day_list(previous_days),
        "by_day": by_day,
    }


def kpis_query() -> sql.Query:
    """``kpis.sql`` as it is loaded (the report composes its comparison over it)."""
    return sql.load(_PACKAGE, "kpis")


@tracer.capture_method(capture_response=False)
def recompute_daily_kpis(conn: Connection, days: Sequence[str | date], currency: str) -> list[str]:
    """Delete and re-insert ``daily_revenue`` then ``daily_kpis`` for ``days`` in one transaction; returns the days
    recomputed. A day left without human sessions loses its rows."""
    day_list = _day_list(days)
    if not day_list:
        return []
    kpis, revenue = kpis_query(), sql.load(_PACKAGE, "revenue")
    names = ", ".join(KPI_COLUMNS)
    insert_kpis = sql.Query(
        name=kpis.name, text=f"INSERT INTO daily_kpis (day, {names}) SELECT day, {names} FROM ({kpis.text}) k"
    )
    revenue_names = ", ".join(REVENUE_COLUMNS)
    insert_revenue = sql.Query(
        name=revenue.name,
        text=f"INSERT INTO daily_revenue ({revenue_names}) SELECT {revenue_names} FROM ({revenue.text}) r",
    )
    with conn.transaction():
        for table in ("daily_revenue", "daily_kpis"):
            conn.execute(*sql.load(_PACKAGE, f"delete_{table}").bind({"days": day_list}))
        conn.execute(*insert_revenue.bind({"all_days": False, "days": day_list}))
        conn.execute(*insert_kpis.bind(kpi_params(currency, day_list, by_day=True)))
    return [d.isoformat() for d in day_list]


def all_days(conn: Connection) -> list[str]:
    """Every day that has sessions or a KPI row (a full recompute's scope)."""
    rows = conn.query(*sql.load(_PACKAGE, "all_days").bind())
    return sorted(d.isoformat() for (d,) in rows)


def kpi_periods(
    conn: Connection,
    currency: str,
    days: Sequence[str | date] | None = None,
    previous_days: Sequence[str | date] = (),
) -> dict[int, dict[str, Any]]:
    """The KPIs over ``days`` (all when None; :data:`CURRENT`) and over ``previous_days`` (:data:`PREVIOUS`), by the
    same definitions as ``daily_kpis``."""
    params = kpi_params(currency, days, by_day=False, previous_days=previous_days)
    rows = conn.query_dicts(*kpis_query().bind(params))
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        period = int(row.pop("period"))
        row.pop("day")
        out[period] = row
    return out


def kpi_totals(conn: Connection, currency: str, days: Sequence[str | date] | None = None) -> dict[str, Any]:
    """The KPIs over all sessions (or over ``days``), by the same definitions as ``daily_kpis``."""
    return kpi_periods(conn, currency, days)[CURRENT]


def aov_outside_order_values(conn: Connection) -> list[dict[str, Any]]:
    """The ``daily_kpis`` days whose AOV lies outside the range of that day's order values (each order's value
    derived again from the events, apart from ``revenue.sql``); empty when every day's AOV is a plausible mean."""
    return conn.query_dicts(*sql.load(_PACKAGE, "aov_outside_order_values").bind())
