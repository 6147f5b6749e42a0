"""Daily KPIs as one SQL query (``sql/kpis.sql``) shared by ``daily_kpis`` and the report's tiles.

Sessions = human sessions (bots and internal traffic excluded) of the day of their start in the site's time zone
(``sessions.session_date``). Visitors = distinct anonymous_id; signed-in users = distinct user_id; engagement rate =
engaged / sessions; bounce rate = 1 - engagement rate; conversion rate = sessions with a purchase / sessions;
orders = distinct transaction_id of purchases in the store currency; revenue = the sessions' net revenue (purchases
minus refunds) in the store currency (other currencies are left out here and shown by ``revenue_by_currency``);
AOV = revenue / orders (null without orders).
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
    "revenue",
    "aov",
    "currency",
)
_PACKAGE = "clickstream.warehouse"


def _as_date(day: str | date) -> date:
    return day if isinstance(day, date) else date.fromisoformat(day)


def kpi_params(currency: str, days: Sequence[str | date] | None, *, by_day: bool) -> dict[str, Any]:
    """The parameters of ``kpis.sql``: every day (``days`` None) or those days, per day or in total."""
    return {
        "currency": currency,
        "all_days": days is None,
        "days": sorted({_as_date(d) for d in days or ()}),
        "by_day": by_day,
    }


@tracer.capture_method(capture_response=False)
def recompute_daily_kpis(conn: Connection, days: Sequence[str | date], currency: str) -> list[str]:
    """Delete and re-insert ``daily_kpis`` for ``days`` in one transaction; returns the days recomputed.

    A day left without human sessions loses its row.
    """
    day_list = sorted({_as_date(d) for d in days})
    if not day_list:
        return []
    kpis = sql.load(_PACKAGE, "kpis")
    insert = sql.Query(
        name=kpis.name, text=f"INSERT INTO daily_kpis (day, {', '.join(KPI_COLUMNS)}) {kpis.text}"
    )
    with conn.transaction():
        conn.execute(*sql.load(_PACKAGE, "delete_daily_kpis").bind({"days": day_list}))
        conn.execute(*insert.bind(kpi_params(currency, day_list, by_day=True)))
    return [d.isoformat() for d in day_list]


def all_days(conn: Connection) -> list[str]:
    """Every day that has sessions or a KPI row (a full recompute's scope)."""
    rows = conn.query(*sql.load(_PACKAGE, "all_days").bind())
    return sorted(d.isoformat() for (d,) in rows)


def kpi_totals(conn: Connection, currency: str, days: Sequence[str | date] | None = None) -> dict[str, Any]:
    """The KPIs over all sessions (or over ``days``), by the same definitions as ``daily_kpis``."""
    rows = conn.query_dicts(*sql.load(_PACKAGE, "kpis").bind(kpi_params(currency, days, by_day=False)))
    totals = dict(rows[0])
    totals.pop("day")
    return totals
