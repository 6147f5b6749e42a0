"""The dashboard: SQL over the warehouse (``data``) rendered as one self-contained HTML page (``render``, ``svg``)."""

from __future__ import annotations

from datetime import date

from clickstream.adapters.warehouse import Connection
from clickstream.core import clock
from clickstream.core.observability import tracer


@tracer.capture_method(capture_response=False)
def build_report(
    conn: Connection,
    currency: str,
    *,
    title: str = "Store dashboard",
    last_days: int | None = None,
    until: date | None = None,
) -> str:
    """The dashboard's HTML for the warehouse behind ``conn``: every day, or the last ``last_days`` days up to
    ``until`` (default: the latest day with sessions)."""
    from clickstream.report.data import collect, resolve_range
    from clickstream.report.render import render_html

    period = resolve_range(conn, last_days, until)
    return render_html(collect(conn, currency, period), rendered_at=clock.now(), title=title)
