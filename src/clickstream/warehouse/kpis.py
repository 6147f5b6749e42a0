"""Daily KPIs (DESIGN.md "KPI definitions") as one SQL query shared by ``daily_kpis`` and the report's tiles.

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


def _as_date(day: str | date) -> date:
    return day if isinstance(day, date) else date.fromisoformat(day)


def kpi_query(
    currency: str, days: Sequence[str | date] | None = None, *, by_day: bool
) -> tuple[str, list[Any]]:
    """The KPI SELECT: one row per day (``by_day``) or one row over all selected days, and its parameters."""
    params: list[Any] = [currency, currency]
    where = ""
    if days is not None and not days:
        where = "WHERE FALSE"
    elif days is not None:
        where = f"WHERE session_date IN ({', '.join('?' for _ in days)})"
        params.extend(_as_date(d) for d in days)
    params.extend([currency, currency, currency])
    day_col = "s.session_date, " if by_day else ""
    group = "GROUP BY s.session_date" if by_day else ""
    join = "o.session_date = k.session_date" if by_day else "TRUE"
    sql = f"""
WITH s AS (
    SELECT session_id, session_date, anonymous_id, user_id, engaged, purchased, duration_s, n_page_views,
           CASE WHEN COALESCE(currency, ?) = ? THEN COALESCE(revenue, 0) ELSE 0 END AS revenue
    FROM human_sessions
    {where}
),
o AS (
    SELECT {day_col}count(DISTINCT e.transaction_id) AS orders
    FROM events e
    JOIN s ON s.anonymous_id = e.anonymous_id AND s.session_id = e.session_id
    WHERE e.event_type = 'purchase' AND e.transaction_id IS NOT NULL AND COALESCE(e.currency, ?) = ?
    {group}
),
k AS (
    SELECT {day_col}
        count(*) AS sessions,
        count(DISTINCT s.anonymous_id) AS visitors,
        count(DISTINCT s.user_id) AS signed_in_users,
        count(*) FILTER (WHERE s.engaged) AS engaged_sessions,
        count(*) FILTER (WHERE s.purchased) AS converted_sessions,
        avg(s.duration_s) AS avg_session_duration_s,
        CAST(COALESCE(sum(s.n_page_views), 0) AS DOUBLE PRECISION) / NULLIF(count(*), 0) AS pages_per_session,
        CAST(COALESCE(sum(s.revenue), 0) AS NUMERIC(18, 2)) AS revenue
    FROM s
    {group}
)
SELECT
    {"k.session_date AS day," if by_day else ""}
    k.sessions,
    k.visitors,
    k.signed_in_users,
    k.engaged_sessions,
    k.converted_sessions,
    CAST(k.engaged_sessions AS DOUBLE PRECISION) / NULLIF(k.sessions, 0) AS engagement_rate,
    1 - CAST(k.engaged_sessions AS DOUBLE PRECISION) / NULLIF(k.sessions, 0) AS bounce_rate,
    k.avg_session_duration_s,
    k.pages_per_session,
    CAST(k.converted_sessions AS DOUBLE PRECISION) / NULLIF(k.sessions, 0) AS conversion_rate,
    COALESCE(o.orders, 0) AS orders,
    k.revenue,
    CAST(k.revenue / NULLIF(COALESCE(o.orders, 0), 0) AS NUMERIC(18, 2)) AS aov,
    CAST(? AS VARCHAR) AS currency
FROM k
LEFT JOIN o ON {join}
"""
    return sql, params


def recompute_daily_kpis(conn: Connection, days: Sequence[str | date], currency: str) -> list[str]:
    """Delete and re-insert ``daily_kpis`` for ``days`` in one transaction; returns the days recomputed.

    A day left without human sessions loses its row.
    """
    day_list = sorted({_as_date(d) for d in days})
    if not day_list:
        return []
    select, params = kpi_query(currency, day_list, by_day=True)
    placeholders = ", ".join("?" for _ in day_list)
    with conn.transaction():
        conn.execute(f"DELETE FROM daily_kpis WHERE day IN ({placeholders})", day_list)
        conn.execute(f"INSERT INTO daily_kpis (day, {', '.join(KPI_COLUMNS)}) {select}", params)
    return [d.isoformat() for d in day_list]


def all_days(conn: Connection) -> list[str]:
    """Every day that has sessions or a KPI row (a full recompute's scope)."""
    rows = conn.query("SELECT session_date FROM sessions UNION SELECT day FROM daily_kpis")
    return sorted(d.isoformat() for (d,) in rows)


def kpi_totals(conn: Connection, currency: str, days: Sequence[str | date] | None = None) -> dict[str, Any]:
    """The KPIs over all sessions (or over ``days``), by the same definitions as ``daily_kpis``."""
    select, params = kpi_query(currency, days, by_day=False)
    return conn.query_dicts(select, params)[0]
